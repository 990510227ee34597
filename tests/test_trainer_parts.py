"""The pure parts of DenseRTrainer (denser.trainer_parts): the capture-mode rule against what TRL runs, the forward
keys against TRL's, the rows of a shuffled batch, the checks on captured states, and the metrics against torch."""
import inspect
import math

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from denser.credit import CreditBatch, credit_summary, token_credit
from denser.models import load
from denser.rewards import digit_share
from denser.trainer_parts import (CREDIT_SUMS, FORWARD_KEYS, ROW, CaptureMode, PolicyPass, choose_capture_mode,
                                  credit_metrics, in_scored_order, mark_rows, pass_states, scored_order, single_pass,
                                  trl_runs_old_logprob_pass, weight_metrics, weight_sums)

G = 4


@pytest.mark.parametrize("schedule", [{}, {"num_iterations": 2}, {"gradient_accumulation_steps": 2},
                                      {"gradient_accumulation_steps": 3, "steps_per_generation": 2}],
                         ids=["defaults", "iterations", "accumulation", "accumulation-misaligned"])
def test_old_logprob_rule_is_what_trl_runs(tmp_path, schedule):
    "`trl_runs_old_logprob_pass` says whether TRL's scoring runs a policy forward; a plain GRPOTrainer shows it."
    policy, tokenizer = load("tiny-qwen3")
    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"{a} + {a}?"}] for a in range(8)]})
    args = GRPOConfig(str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=G,
                      num_generations=G, max_completion_length=4, seed=0, **schedule)
    trainer = GRPOTrainer(policy, digit_share, args=args, train_dataset=prompts, processing_class=tokenizer)
    forwards = []
    real = trainer._get_per_token_logps_and_entropies
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: forwards.append(1) or real(*a, **k)
    trainer.model.train()
    trainer._generate_and_score_completions([prompts[i] for i in range(2) for _ in range(G)])
    expected = trl_runs_old_logprob_pass(args.gradient_accumulation_steps, args.steps_per_generation,
                                         args.num_iterations, False)
    assert bool(forwards) == expected


def test_capture_modes():
    states = ("hidden_states",)
    assert choose_capture_mode("auto", states, False, 1) is CaptureMode.TRAINING_FORWARD
    assert choose_capture_mode("auto", states, False, 2) is CaptureMode.OWN_FORWARD
    assert choose_capture_mode("auto", states, True, 1) is CaptureMode.OLD_LOGPROB_PASS
    assert choose_capture_mode("scoring", ("entropies",), False, 1) is CaptureMode.OWN_FORWARD
    assert choose_capture_mode("training", ("logprobs",), True, 1) is CaptureMode.TRAINING_FORWARD
    assert choose_capture_mode("training", ("completion_ids",), True, 1) is CaptureMode.NO_FORWARD


def test_forward_keys_are_trls():
    "TRL keeps no list of its forward's multimodal inputs: the copy is its forward's parameters, filled by its loss."
    parameters = list(inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters)
    assert set(parameters[parameters.index("compute_aux_loss") + 1:]) == set(FORWARD_KEYS)
    source = inspect.getsource(GRPOTrainer._compute_loss)
    assert all(f'{key}=inputs.get("{key}")' in source for key in FORWARD_KEYS)


@pytest.mark.parametrize("seed", range(5))
def test_rows_survive_any_shuffle(seed):
    generator = torch.Generator().manual_seed(seed)
    scored = mark_rows(dict(advantages=torch.randn(8, generator=generator),
                            completion_ids=torch.randint(0, 50, (8, 3), generator=generator), other=torch.arange(8)))
    shuffle = torch.randperm(8, generator=generator)
    micro_batch = {key: value[shuffle] for key, value in scored.items()}
    order = scored_order(micro_batch[ROW])
    back = in_scored_order(micro_batch, order)
    assert set(back) == {"advantages", "completion_ids"}  # the scored keys only
    assert torch.equal(back["completion_ids"], scored["completion_ids"])
    assert torch.equal(back["advantages"][micro_batch[ROW]], micro_batch["advantages"])
    with pytest.raises(RuntimeError, match="not one whole scored batch"):
        scored_order(micro_batch[ROW][:4])


def test_captured_states_are_checked():
    batch = dict(prompt_ids=torch.zeros(3, 2), completion_ids=torch.zeros(3, 4))
    chunks = [torch.randn(2, 6, 5), torch.randn(1, 6, 5)]
    recorded = PolicyPass((3, 6), chunks, 0.0, logprobs=torch.arange(3.0)[:, None])
    assert torch.equal(pass_states(recorded, batch, -1)[2], chunks[1][0, 1:5])
    assert torch.equal(recorded.rows(torch.tensor([2, 0, 1])).logprobs[:, 0], torch.tensor([2.0, 0.0, 1.0]))
    with pytest.raises(RuntimeError, match="not recognised as the policy"):
        single_pass([], "own_forward")
    with pytest.raises(RuntimeError, match="saw 2"):
        single_pass([recorded, recorded], "old_logprob_pass")
    with pytest.raises(RuntimeError, match="captured no hidden states from decoder layer -1"):
        pass_states(PolicyPass((3, 6), [], 0.0), batch, -1)
    with pytest.raises(RuntimeError, match="do not match the batch"):
        pass_states(PolicyPass((3, 6), [torch.randn(3, 5, 5)], 0.0), batch, -1)


def test_metrics_are_the_statistics_they_name():
    generator = torch.Generator().manual_seed(0)
    advantages = torch.tensor([1.0, -1.0, 0.0, 0.0])  # the second group has no contrast
    mask = (torch.rand(4, 9, generator=generator) > 0.2).float()
    hidden = torch.randn(4, 9, 6, generator=generator)
    credit = token_credit("denser", CreditBatch(advantages, mask, 2, hidden_states=hidden), window_size=2)
    summary = credit_summary(credit.token_advantages, advantages, mask, 2)
    metrics = credit_metrics({key: float(summary[key]) for key in CREDIT_SUMS}, float(summary["maximum"]), 1.5)
    scaled = mask[:2].bool()
    multipliers = (credit.token_advantages[:2] / advantages[:2, None])[scaled].double()
    assert math.isclose(metrics["credit/weight_std"], multipliers.std(unbiased=False).item(), rel_tol=1e-6)
    assert math.isclose(metrics["credit/weight_max"], multipliers.max().item(), rel_tol=1e-6)
    assert (metrics["credit/groups_with_contrast"], metrics["credit/seconds"]) == (0.5, 1.5)
    sums, maximum = weight_sums(credit.weights, mask, 2)
    weights = weight_metrics({key: float(value) for key, value in sums.items()}, float(maximum), 1.5)
    valid = credit.weights.weights[mask.bool()].double()
    assert math.isclose(weights["denser/weight_mean"], valid.mean().item(), rel_tol=1e-6)
    assert math.isclose(weights["denser/weight_std"], valid.std(unbiased=False).item(), rel_tol=1e-5)
    assert math.isclose(weights["denser/weight_max"], valid.max().item(), rel_tol=1e-6)
    assert math.isclose(weights["denser/cross_mean"], credit.weights.cross.nanmean().item(), rel_tol=1e-6)
    assert weights["denser/groups_with_contrast"] == 0.5
