"""Token-credit signals: loop twins of the math, the control's invariants, and every signal through the trainer."""
import math

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from denser.credit import SIGNALS, CreditBatch, credit_summary, fisher_exact_p, key_token_bonus, token_credit
from naive import naive_ktae_bonus
from strategies import batches
from tiny_trainer import SOURCES, make


def credit_batch(batch, step=0):
    "A CreditBatch from a drawn batch, with random entropies and token ids."
    generator = torch.Generator().manual_seed(len(batch["advantages"]) * 7 + batch["hidden"].shape[1])
    shape = batch["mask"].shape
    return CreditBatch(batch["advantages"], batch["mask"], batch["num_generations"], hidden_states=batch["hidden"],
                       entropies=torch.rand(shape, generator=generator) * 3,
                       completion_ids=torch.randint(0, 6, shape, generator=generator), seed=0, step=step)


@hsettings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_ktae_bonus_equals_loop_twin(num_correct, num_wrong, length, vocabulary, seed):
    generator = torch.Generator().manual_seed(seed)
    group = num_correct + num_wrong
    ids = torch.randint(0, vocabulary, (group, length), generator=generator)
    mask = (torch.rand(group, length, generator=generator) > 0.2).long()
    correct = torch.tensor([True] * num_correct + [False] * num_wrong)
    fast = key_token_bonus(ids, mask, correct)
    torch.testing.assert_close(fast.double(), naive_ktae_bonus(ids, mask, correct), atol=1e-5, rtol=0)


@pytest.mark.parametrize("table", [(3, 0, 0, 5), (2, 1, 1, 2), (0, 0, 4, 4), (5, 5, 0, 0), (1, 3, 6, 0)])
def test_fisher_exact_matches_scipy(table):
    from scipy.stats import fisher_exact
    expected = fisher_exact([[table[0], table[1]], [table[2], table[3]]]).pvalue
    assert abs(fisher_exact_p(torch.tensor([table], dtype=torch.float64)).item() - expected) < 1e-9


@hsettings(max_examples=40, deadline=None)
@given(batches(), st.sampled_from([0.0, 0.3, 1.0]))
def test_entropy_credit_equals_loop_twin(batch, beta):
    inputs = credit_batch(batch)
    fast = token_credit("entropy", inputs, beta=beta).token_advantages
    mask = batch["mask"].bool()
    for row in range(len(mask)):
        values = inputs.entropies[row][mask[row]].double()
        mean = max(values.mean().item(), 1e-8) if len(values) else 1.0
        expected = batch["advantages"][row].item() * ((1 - beta) + beta * values / mean)
        torch.testing.assert_close(fast[row][mask[row]].double(), expected, atol=1e-5, rtol=1e-5)


@hsettings(max_examples=40, deadline=None)
@given(batches(), st.integers(0, 50))
def test_shuffled_control_keeps_each_rows_weights_and_scale(batch, step):
    inputs = credit_batch(batch, step)
    dense = token_credit("denser", inputs, window_size=batch["window_size"], beta=0.5)
    control = token_credit("denser_shuffled", inputs, window_size=batch["window_size"], beta=0.5)
    mask = batch["mask"].bool()
    for row in range(len(mask)):
        a, b = dense.token_advantages[row][mask[row]], control.token_advantages[row][mask[row]]
        torch.testing.assert_close(a.sort().values, b.sort().values)  # same multiset: same loss scale
    torch.testing.assert_close(control.token_advantages[~mask], dense.token_advantages[~mask])


def test_uniform_puts_a_tenth_of_the_mass_on_each_end():
    advantages, mask = torch.tensor([1.0, -1.0]), torch.ones(2, 20)
    summary = credit_summary(token_credit("uniform", CreditBatch(advantages, mask, 2)).token_advantages, advantages, mask, 2)
    assert summary["mass_first"] / summary["mass"] == pytest.approx(0.1)
    assert summary["mass_last"] / summary["mass"] == pytest.approx(0.1)
    assert summary["squares"] / summary["count"] - (summary["total"] / summary["count"]) ** 2 == pytest.approx(0.0)


SIGNAL_NAMES = ["uniform", "denser", "denser_shuffled", "entropy", "ktae"]


@pytest.mark.parametrize("source", ["training-forward", "trl-old-logprob-pass"])
@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_every_signal_trains_from_each_source(tiny, prompts, tmp_path, signal, source):
    assert set(SIGNAL_NAMES) <= set(SIGNALS)
    trainer = make(tiny, prompts, tmp_path, token_credit=signal, max_steps=2, **SOURCES[source])
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(math.isfinite(entry["loss"]) for entry in logged)
    for key in ("credit/weight_std", "credit/groups_with_contrast", "credit/mass_first_10pct", "credit/mass_last_10pct"):
        assert key in logged[0], key
    if signal in ("denser", "denser_shuffled", "entropy"):  # signals that read a policy forward say which
        assert logged[0]["denser/training_forward"] == float(source == "training-forward")
    if signal != "uniform":
        assert any(entry["credit/weight_std"] > 0 for entry in logged), signal


def test_entropies_of_the_training_forward_equal_a_separate_forward(tiny, prompts, tmp_path):
    runs = {}
    for capture in ("scoring", "training"):
        runs[capture] = make(tiny, prompts, tmp_path / capture, token_credit="entropy", denser_capture=capture)
        runs[capture].train()
    losses = {capture: [e["loss"] for e in run.state.log_history if "loss" in e] for capture, run in runs.items()}
    assert max(abs(a - b) for a, b in zip(*losses.values())) <= 1e-5, losses


def test_top_entropy_quantile_masks_the_loss_with_denser(tiny, prompts, tmp_path):
    masked = make(tiny, prompts, tmp_path / "masked", top_entropy_quantile=0.2, max_steps=2)
    masked.train()
    full = make(tiny, prompts, tmp_path / "full", max_steps=2)
    full.train()
    losses = [[e["loss"] for e in t.state.log_history if "loss" in e] for t in (masked, full)]
    assert all(math.isfinite(loss) for loss in losses[0])
    assert losses[0] != losses[1]  # the mask changed what the loss saw
    assert masked.state.log_history[0]["denser/weight_std"] > 0
