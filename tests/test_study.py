"""The study's guarantees: paired arms see the same prompts and the same step-1 rollouts; its statistics match
hand-computed cases."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from denser.eval import load_eval_set
from denser.experiment import load_experiment
from denser.run import RunSpec
from denser.stats import aulc, paired_comparison, seeds_for_power, sign_flip_p, steps_to_threshold, t_interval
from denser.rewards import digit_share
from tiny_trainer import make


def step_one_completions(tiny, prompts, tmp_path, **settings):
    "The completions a fresh tiny run's reward function sees at its first step."
    seen = []

    def recorder(completions, **kwargs):
        seen.append([c[-1]["content"] for c in completions])
        return digit_share(completions)

    trainer = make(tiny, prompts, tmp_path, max_steps=1, sampling_seed_per_step=True, **settings)
    trainer.reward_funcs = [recorder]
    trainer.train()
    return seen[0]


def test_arms_of_one_seed_sample_identical_step_one_completions(tiny, prompts, tmp_path):
    grpo = step_one_completions(tiny, prompts, tmp_path / "grpo", use_denser=False)
    for arm in ({"token_credit": "denser"}, {"token_credit": "denser_shuffled"}, {"token_credit": "ktae"}):
        assert step_one_completions(tiny, prompts, tmp_path / str(arm), **arm) == grpo, arm
    assert step_one_completions(tiny, prompts, tmp_path / "seed1", use_denser=False, seed=1) != grpo


def test_study_arms_share_prompts_and_the_held_out_set_is_fixed():
    study = load_experiment("study")
    by_seed = {}
    trained = [run for run in study.runs if run.notebook == "train"]
    assert len(trained) >= 18 and any(run.notebook == "evaluate" for run in study.runs)  # + the untrained model
    for run in trained:
        spec = RunSpec.from_mapping({**run.config, "model_name_or_path": "tiny-qwen3"}, run.name)
        questions = spec.train_data().dataset["question"]
        assert len(set(questions)) == len(questions)  # fresh prompts: never repeated
        by_seed.setdefault(spec.training.seed, []).append(questions)
        assert spec.training.sampling_seed_per_step
    for seed, streams in by_seed.items():
        assert all(stream == streams[0] for stream in streams), seed
    first = RunSpec.from_mapping(trained[0].config)
    held_out = load_eval_set(first.held_out_name, limit=first.run.final_held_out_problems)
    assert len(held_out.rows) >= 200
    assert not set(held_out.rows["problem"]) & {q for streams in by_seed.values() for q in streams[0]}


def test_t_interval_by_hand():
    interval = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.302653
    assert interval.mean == 2.0
    assert interval.high - interval.mean == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    assert math.isnan(t_interval([0.3]).low) and t_interval([]).n == 0


@pytest.mark.parametrize("differences, p", [([1.0, 2.0, 3.0], 2 / 8), ([1.0, -1.0], 1.0), ([0.2] * 6, 2 / 64),
                                            ([3.0, -1.0, 2.0], 4 / 8), ([0.0, 0.0], 1.0)])
def test_sign_flip_by_hand(differences, p):
    # [3, -1, 2]: sum 4; of the 8 patterns |sum| >= 4 for (+,+,+)=4, (+,-,+)=6, and their negations: 4 of 8
    assert sign_flip_p(differences) == pytest.approx(p)


def test_sign_flip_p_beyond_enumeration():
    # 30 differences all one way: of 2**30 patterns only all-plus and all-minus reach the observed |sum|
    assert sign_flip_p([0.01] * 30) == 2 / 2**30
    assert sign_flip_p([1.0] * 15 + [-1.0] * 15) == 1.0
    with pytest.raises(ValueError, match="at most 40 pairs"):
        sign_flip_p(np.ones(41))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-4, 4).map(float) | st.floats(-3, 3, allow_nan=False), min_size=1, max_size=12))
def test_sign_flip_p_equals_enumeration(differences):
    "The meet-in-the-middle count equals listing every sign pattern (integers make ties on the threshold)."
    d = np.asarray(differences)
    sums = np.abs(np.array(list(itertools.product((1.0, -1.0), repeat=len(d)))) @ d)
    observed = abs(d.sum())
    assert sign_flip_p(d) == pytest.approx(float((sums >= observed - 1e-12 * max(1.0, observed)).mean()), abs=1e-12)


def test_paired_comparison_and_power():
    result = paired_comparison([0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.6])
    assert result.difference.mean == pytest.approx(0.125)
    assert result.p_sign_flip == pytest.approx(2 / 16)
    assert seeds_for_power(0.04, 0.05) == 8 and seeds_for_power(0.001, 0.05) == 6
    # seeds whose AULC differences agree up to rounding give an SD of ~1e-17 (the study's report met one): 6 seeds
    assert seeds_for_power(2e-17, 0.05) == 6
    assert aulc([0.1, 0.3]) == pytest.approx(0.2)
    assert steps_to_threshold(np.array([0.0, 0.5, 0.5, 0.5]), 0.5) == 4
