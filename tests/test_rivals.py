"""Rival token-credit signals: loop twins of NTHR/THR's influence and TEMPO's prefix tree, and training through the trainer."""
import math

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from denser.credit import SIGNALS, CreditBatch, token_credit
from denser.rivals import correct_influence, prefix_tree_corrections
from strategies import batches
from tiny_trainer import SOURCES, make


def naive_influence(hidden, ids, logprobs, mask, correct):
    "s_j,t' by its definition, token pair by token pair."
    group, length = ids.shape
    out = torch.zeros(group, length, dtype=torch.float64)
    for j in range(group):
        for s in range(length):
            if not mask[j, s]:
                continue
            for i in range(group):
                if i == j or not correct[i]:
                    continue
                for t in range(length):
                    if mask[i, t] and ids[i, t] == ids[j, s]:
                        alpha = (1 - math.exp(logprobs[i, t])) * (1 - math.exp(logprobs[j, s]))
                        out[j, s] += alpha * float(hidden[i, t].double() @ hidden[j, s].double())
    return out


def naive_tree(ids, mask, outcomes):
    "Branch-gated TD corrections by walking each completion's prefixes."
    group, length = ids.shape
    rows = [[int(ids[i, t]) if mask[i, t] else None for t in range(length)] for i in range(group)]

    def shares(r, i, n):  # r's first n tokens are valid and equal i's
        return all(rows[r][u] is not None and rows[r][u] == rows[i][u] for u in range(n))

    def value(i, n):
        through = [r for r in range(group) if shares(r, i, n)]
        return sum(float(outcomes[r]) for r in through) / len(through)

    out = torch.zeros(group, length, dtype=torch.float64)
    for i in range(group):
        for t in range(length):
            if rows[i][t] is None:
                continue
            branch = any(shares(r, i, t) and not (rows[r][t] is not None and rows[r][t] == rows[i][t]) for r in range(group))
            if branch:
                out[i, t] = value(i, t + 1) - value(i, t)
    return out


@hsettings(max_examples=40, deadline=None)
@given(batches(), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_influence_equals_loop_twin(batch, vocabulary, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocabulary, batch["mask"].shape, generator=generator)
    logprobs = -torch.rand(batch["mask"].shape, generator=generator) * 3
    correct = batch["advantages"] > 0
    fast = correct_influence(batch["hidden"], ids, logprobs, batch["mask"], correct)
    torch.testing.assert_close(fast.double(), naive_influence(batch["hidden"], ids, logprobs, batch["mask"], correct),
                               atol=1e-4, rtol=1e-4)


@hsettings(max_examples=60, deadline=None)
@given(batches(), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_prefix_tree_equals_loop_twin(batch, vocabulary, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocabulary, batch["mask"].shape, generator=generator)
    fast = prefix_tree_corrections(ids, batch["mask"], batch["advantages"])
    torch.testing.assert_close(fast.double(), naive_tree(ids, batch["mask"], batch["advantages"]), atol=1e-5, rtol=0)


@hsettings(max_examples=40, deadline=None)
@given(batches(), st.integers(0, 2**31 - 1))
def test_rivals_keep_sign_and_padding(batch, seed):
    "NTHR and THR (p < 1) scale A_i by positive factors; every rival leaves padding at A_i."
    generator = torch.Generator().manual_seed(seed)
    shape = batch["mask"].shape
    inputs = CreditBatch(batch["advantages"], batch["mask"], batch["num_generations"], hidden_states=batch["hidden"],
                         completion_ids=torch.randint(0, 3, shape, generator=generator),
                         logprobs=-torch.rand(shape, generator=generator))
    for name in ("nthr", "thr", "tempo"):
        out = token_credit(name, inputs).token_advantages
        padding = ~batch["mask"].bool()
        torch.testing.assert_close(out[padding], batch["advantages"][:, None].expand(shape)[padding])
        if name != "tempo":
            assert (out * batch["advantages"][:, None] >= 0).all(), name


RIVALS = ["nthr", "thr", "tempo"]


@pytest.mark.parametrize("source", ["training-forward", "trl-old-logprob-pass"])
@pytest.mark.parametrize("signal", RIVALS)
def test_rivals_train(tiny, prompts, tmp_path, signal, source):
    assert set(RIVALS + ["oracle"]) <= set(SIGNALS)
    trainer = make(tiny, prompts, tmp_path, token_credit=signal, max_steps=2, **SOURCES[source])
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(math.isfinite(entry["loss"]) for entry in logged)
    assert "credit/weight_std" in logged[0]
    if signal != "tempo":  # signals that read a policy forward say which
        assert logged[0]["denser/training_forward"] == float(source == "training-forward")


def test_rival_knobs_are_checked():
    from denser.trainer import DenseRConfig
    with pytest.raises(ValueError, match="thr_p"):
        DenseRConfig("out", token_credit="nthr", thr_p=0.2, use_cpu=True, report_to="none")
    DenseRConfig("out", token_credit="thr", thr_p=-0.2, use_cpu=True, report_to="none")


def test_oracle_trains_with_monte_carlo_advantages(tiny, prompts, tmp_path):
    "The trainer fills mc_advantages from policy continuations; the oracle's token advantages vary within completions."
    trainer = make(tiny, prompts, tmp_path, token_credit="oracle", oracle_k=2, oracle_stride=4, max_steps=2)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(math.isfinite(entry["loss"]) for entry in logged)
    assert any(entry["credit/weight_std"] > 0 for entry in logged)
    with pytest.raises(ValueError, match="oracle_k"):
        from denser.trainer import DenseRConfig
        DenseRConfig("out", token_credit="oracle", oracle_k=0, use_cpu=True, report_to="none")
