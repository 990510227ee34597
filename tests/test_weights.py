import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import denser
from denser.weights import token_weights
from denser.reference import loop_token_weights as naive_token_weights
from naive import reference_oracle
from strategies import batches

KNOBS = st.fixed_dictionaries({
    "alpha_cross": st.sampled_from([0.0, 0.5, 1.0]),
    "alpha_within": st.sampled_from([0.3, 1.0]),
    "beta": st.sampled_from([0.0, 0.1, 0.5, 1.0]),
})


def run(batch, precise=False, **knobs):
    "token_weights of a drawn batch; `precise` computes in float64 to compare with the float64 twins."
    hidden = batch["hidden"].double() if precise else batch["hidden"]
    return token_weights(hidden, batch["advantages"], batch["mask"], batch["num_generations"],
                         window_size=batch["window_size"], **knobs)


def contrast_rows(batch):
    positive = (batch["advantages"] >= 0).view(-1, batch["num_generations"])
    has = positive.any(1) & (~positive).any(1)
    return has.repeat_interleave(batch["num_generations"])


@settings(max_examples=60, deadline=None)
@given(batches(), KNOBS)
def test_vectorised_equals_loop_twin(batch, knobs):
    fast = run(batch, precise=True, **knobs)
    weights, cross, within = naive_token_weights(batch["hidden"], batch["advantages"], batch["mask"],
                                                 batch["num_generations"], batch["window_size"], **knobs)
    torch.testing.assert_close(fast.weights.double(), weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.cross.double(), cross, atol=1e-5, rtol=0, equal_nan=True)
    torch.testing.assert_close(fast.within.double(), within, atol=1e-5, rtol=0, equal_nan=True)


@settings(max_examples=80, deadline=None)
@given(batches(), KNOBS)
def test_equals_the_public_reference_on_valid_tokens(batch, knobs):
    "Reference parity, including all-masked references and one-token completions (max diff <= 1e-5)."
    fast = run(batch, precise=True, **knobs)
    oracle = reference_oracle(batch["hidden"], batch["advantages"], batch["mask"], batch["num_generations"],
                              batch["window_size"], **knobs)
    valid = batch["mask"].bool()
    assert torch.cat([(fast.weights.double()[valid] - oracle[valid]).abs(), torch.zeros(1, dtype=torch.float64)]).max() <= 1e-5


@pytest.mark.parametrize("lengths", [[0, 3, 3, 3], [1, 1, 1, 1], [0, 0, 1, 4], [1, 0, 2, 0]])
def test_reference_parity_on_degenerate_groups(lengths):
    "Empty and one-token completions, states predicting the first token shared as in a real batch."
    hidden = torch.randn(4, 4, 6)
    hidden[:, 0] = hidden[0, 0]
    mask = (torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]).long()
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5])
    for beta in (0.1, 1.0):
        fast = token_weights(hidden, advantages, mask, 4, window_size=1, alpha_within=0.3, beta=beta).weights
        oracle = reference_oracle(hidden, advantages, mask, 4, 1, alpha_within=0.3, beta=beta)
        valid = mask.bool()
        assert torch.cat([(fast.double()[valid] - oracle[valid]).abs(), torch.zeros(1, dtype=torch.float64)]).max() <= 1e-5


@settings(max_examples=60, deadline=None)
@given(batches(), KNOBS)
def test_weights_finite_with_mean_one_and_one_elsewhere(batch, knobs):
    result = run(batch, **knobs)
    mask = batch["mask"].bool()
    assert torch.isfinite(result.weights).all()
    assert (result.weights[~mask] == 1).all()
    contrast = contrast_rows(batch)
    assert (result.weights[~contrast] == 1).all()
    for row in range(len(mask)):
        if contrast[row] and mask[row].any():
            mean = result.weights[row][mask[row]].mean().item()  # 1 - beta where every divergence is 0
            assert abs(mean - 1) < 1e-5 or abs(mean - (1 - knobs["beta"])) < 1e-5


@settings(max_examples=40, deadline=None)
@given(batches())
def test_beta_zero_is_plain_grpo(batch):
    assert (run(batch, beta=0.0).weights == 1).all()


@settings(max_examples=40, deadline=None)
@given(batches(), st.randoms(use_true_random=False))
def test_permuting_rollouts_within_a_group_permutes_weights(batch, rng):
    g = batch["num_generations"]
    order = []
    for start in range(0, len(batch["advantages"]), g):
        members = list(range(start, start + g))
        rng.shuffle(members)
        order += members
    order = torch.tensor(order)
    permuted = {**batch, "hidden": batch["hidden"][order], "advantages": batch["advantages"][order], "mask": batch["mask"][order]}
    torch.testing.assert_close(run(permuted).weights, run(batch).weights[order], atol=1e-5, rtol=0)


@settings(max_examples=40, deadline=None)
@given(batches(), st.sampled_from([1e-3, 0.5, 7.0, 1e3]))
def test_scaling_hidden_states_changes_nothing(batch, scale):
    scaled = {**batch, "hidden": batch["hidden"] * scale}
    torch.testing.assert_close(run(scaled).weights, run(batch).weights, atol=1e-5, rtol=0)


@settings(max_examples=40, deadline=None)
@given(batches(), st.integers(1, 5))
def test_extra_padding_changes_no_valid_weight(batch, extra):
    b, _, d = batch["hidden"].shape
    padded = {**batch,
              "hidden": torch.cat([batch["hidden"], torch.randn(b, extra, d)], 1),
              "mask": torch.cat([batch["mask"], torch.zeros(b, extra, dtype=batch["mask"].dtype)], 1)}
    mask = batch["mask"].bool()
    torch.testing.assert_close(run(padded).weights[:, : mask.shape[1]][mask], run(batch).weights[mask], atol=1e-6, rtol=0)


def test_public_entry_point_and_result_fields():
    hidden = torch.randn(4, 6, 8)
    result = denser.token_weights(hidden, torch.tensor([1.0, -1.0, 1.0, 1.0]), torch.ones(4, 6), 2)
    assert result.weights.shape == (4, 6)
    assert result.has_contrast.tolist() == [True, True, False, False]
    assert not math.isnan(result.cross[0]) and math.isnan(result.cross[2])


def test_bfloat16_states_and_bool_mask_are_accepted():
    hidden = torch.randn(4, 6, 8)
    adv, mask = torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.ones(4, 6, dtype=torch.bool)
    low = token_weights(hidden.bfloat16(), adv, mask, 4).weights
    assert low.dtype == torch.float32 and torch.isfinite(low).all()


# The errors of bad knobs and bad inputs are tested where they are defined, in nbs/03_weights.ipynb.
