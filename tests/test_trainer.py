"""DenseRTrainer on tiny offline models: weights every step from each state source, parity with GRPO, PEFT + KL
capture, every error."""
import math
from contextlib import contextmanager, nullcontext
from unittest.mock import PropertyMock, patch

import pytest
import torch
from trl import GRPOConfig, GRPOTrainer

import denser.credit as credit_module
import denser.trainer as trainer_module
from denser.capture import capture_hidden_states, completion_states
from denser.trainer import DenseRConfig, DenseRTrainer
from denser.viz import read_samples
from tiny_trainer import G, SOURCES, make, settings


def score(trainer, prompts, groups=2):
    "TRL's scoring entry point on `groups` prompts x G completions, in training mode."
    trainer.model.train()
    return trainer._generate_and_score_completions([prompts[i] for i in range(groups) for _ in range(G)])


# ---------------------------------------------------------------------------------------------------------------
# DenseR steps


def non_uniform(advantages, mask):
    "Whether some completion's token advantages vary along it."
    mask = mask.bool()
    return any(advantages[i][mask[i]].std() > 1e-6 for i in range(len(advantages)) if mask[i].sum() > 1)


@pytest.mark.parametrize("model", ["tiny-qwen3", "tiny-llama"])
def test_scoring_gives_non_uniform_token_advantages(tiny, prompts, tmp_path, model):
    trainer = make(tiny, prompts, tmp_path, model=model, denser_capture="scoring")
    scored = score(trainer, prompts)
    assert scored["advantages"].shape == scored["completion_ids"].shape
    assert trainer._metrics["train"]["denser/groups_with_contrast"][-1] > 0
    assert non_uniform(scored["advantages"], scored["completion_mask"])


@pytest.mark.parametrize("capture", ["scoring", "auto"])
@pytest.mark.parametrize("model", ["tiny-qwen3", "tiny-llama"])
def test_steps_give_non_uniform_token_advantages(tiny, prompts, tmp_path, model, capture):
    trainer = make(tiny, prompts, tmp_path, model=model, denser_capture=capture)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "denser/weight_std" in entry]
    assert len(logs) == 3 and all(entry["denser/weight_std"] > 0 for entry in logs)
    for key in ("weight_mean", "weight_std", "weight_max", "cross_mean", "within_mean", "groups_with_contrast",
                "capture_seconds", "weights_seconds"):
        assert all(math.isfinite(entry[f"denser/{key}"]) for entry in logs), key
    assert all(entry["denser/training_forward"] == float(capture == "auto") for entry in logs)
    batch = trainer._buffered_inputs[0]
    assert batch["advantages"].ndim == 2 and non_uniform(batch["advantages"], batch["completion_mask"])
    assert "denser_row" not in batch  # the training forward consumed its marks


def test_sign_of_advantage_is_kept_per_token(tiny, prompts, tmp_path):
    trainer = make(tiny, prompts, tmp_path, denser_capture="scoring")
    captured = {}
    real = credit_module.token_weights

    def spy(hidden_states, advantages, *args, **kwargs):
        captured["scalar"] = advantages.clone()
        return real(hidden_states, advantages, *args, **kwargs)

    with patch.object(credit_module, "token_weights", spy):
        scored = score(trainer, prompts)
    mask = scored["completion_mask"].bool()
    token = scored["advantages"]
    scalar = captured["scalar"][:, None].expand_as(token)
    nonzero = mask & (token.abs() > 1e-4)  # weights can be ~0 where all states agree (e.g. the first token)
    assert nonzero.any() and (torch.sign(token[nonzero]) == torch.sign(scalar[nonzero])).all()


# ---------------------------------------------------------------------------------------------------------------
# Parity with GRPOTrainer


def source_metrics(name):
    "(own_forward, training_forward) that a run with the schedule SOURCES[name] logs."
    return float(name == "own-forward"), float(name == "training-forward")


@pytest.mark.parametrize("source", SOURCES)
def test_parity_with_grpo(tiny, prompts, tmp_path, source):
    schedule = SOURCES[source]
    grpo = make(tiny, prompts, tmp_path / "grpo", GRPOTrainer, GRPOConfig,
                **{k: v for k, v in schedule.items() if not k.startswith("denser_")})
    grpo.train()
    for switch in ({"token_credit": "uniform"}, {"use_denser": False}, {"denser_beta": 0.0}):
        denser = make(tiny, prompts, tmp_path / str(switch), **schedule, **switch)
        denser.train()
        losses = [[entry["loss"] for entry in t.state.log_history if "loss" in entry] for t in (grpo, denser)]
        assert len(losses[0]) == 3
        assert max(abs(a - b) for a, b in zip(*losses)) <= 1e-6, (switch, losses)
        difference = max((a - b).abs().max().item()
                         for a, b in zip(grpo.model.parameters(), denser.model.parameters()))
        assert difference <= 1e-6, (switch, difference)
    logged = denser.state.log_history[0]
    assert (logged["denser/own_forward"], logged["denser/training_forward"]) == source_metrics(source)


def test_bf16_rollouts_match_grpo(tiny, prompts, tmp_path):
    # Under bf16 autocast DenseRTrainer generates inside one autocast context (weights cast once per rollout batch,
    # not per token): the completions, and so the whole run, must stay GRPOTrainer's; a cast kept past the rollout
    # would generate step 2's completions with step 1's weights.
    grpo = make(tiny, prompts, tmp_path / "grpo", GRPOTrainer, GRPOConfig, bf16=True)
    grpo.train()
    denser = make(tiny, prompts, tmp_path / "denser", bf16=True, token_credit="uniform")
    denser.train()
    assert denser.accelerator.native_amp
    logs = [[entry for entry in t.state.log_history if "loss" in entry] for t in (grpo, denser)]
    assert len(logs[0]) == 3
    for key in ("loss", "completions/mean_length", "reward"):
        assert [entry[key] for entry in logs[0]] == pytest.approx([entry[key] for entry in logs[1]], abs=1e-6), key
    difference = max((a - b).abs().max().item() for a, b in zip(grpo.model.parameters(), denser.model.parameters()))
    assert difference <= 1e-6


@pytest.mark.parametrize("settings", [{}, {"gradient_checkpointing": True}, {"model": "tiny-llama"}],
                         ids=["qwen3", "gradient-checkpointing", "llama"])
def test_training_forward_trains_like_a_separate_forward(tiny, prompts, tmp_path, settings):
    runs = {}
    for capture in ("scoring", "training"):  # built and trained one after the other: the same seeding for both
        runs[capture] = make(tiny, prompts, tmp_path / capture, denser_capture=capture, **settings)
        runs[capture].train()
    logs = {capture: [e for e in run.state.log_history if "loss" in e] for capture, run in runs.items()}
    assert len(logs["training"]) == 3
    for key in ("loss", "denser/weight_std", "denser/cross_mean", "denser/within_mean"):
        assert max(abs(a[key] - b[key]) for a, b in zip(logs["scoring"], logs["training"])) <= 1e-5, key
    assert [e["denser/training_forward"] for e in logs["training"]] == [1.0] * 3
    assert [e["denser/own_forward"] for e in logs["training"]] == [0.0] * 3
    assert [e["denser/capture_seconds"] for e in logs["training"]] == [0.0] * 3
    difference = max((a - b).abs().max().item()
                     for a, b in zip(runs["scoring"].model.parameters(), runs["training"].model.parameters()))
    assert difference <= 1e-5


# ---------------------------------------------------------------------------------------------------------------
# Schedules and loss types


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"])
def test_every_loss_type(tiny, prompts, tmp_path, loss_type):
    trainer = make(tiny, prompts, tmp_path, loss_type=loss_type, max_steps=1)
    trainer.train()
    assert math.isfinite(trainer.state.log_history[0]["loss"])
    assert trainer.state.log_history[0]["denser/weight_std"] > 0


@pytest.mark.parametrize("schedule", [
    {"gradient_accumulation_steps": 2, "steps_per_generation": 2, "per_device_train_batch_size": 2},
    {"gradient_accumulation_steps": 2, "steps_per_generation": 4, "per_device_train_batch_size": 2},
    {"num_iterations": 2, "steps_per_generation": 2},
    {"gradient_accumulation_steps": 2, "steps_per_generation": 1},
    {"num_iterations": 2, "denser_capture": "training"},
], ids=["accumulation", "accumulation-misaligned", "iterations-and-steps", "accumulation-generation-per-micro-batch",
        "iterations-training-forward"])
def test_schedules(tiny, prompts, tmp_path, schedule):
    trainer = make(tiny, prompts, tmp_path, max_steps=2, **schedule)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "denser/weight_std" in entry]
    assert logs and all(entry["denser/weight_std"] > 0 for entry in logs)
    assert all(batch["advantages"].ndim == 2 for batch in trainer._buffered_inputs)


# ---------------------------------------------------------------------------------------------------------------
# PEFT + KL: the reference pass (adapters disabled) must not be captured


def assert_policy_states(model, batch, seen):
    "The states DenseR weighed (`seen`, (B, T, D)) are the PEFT policy's on `batch`, not the base model's."
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)

    def states(disabled):
        with torch.no_grad(), capture_hidden_states(model) as capture:
            with model.disable_adapter() if disabled else nullcontext():
                model(input_ids=input_ids, attention_mask=attention_mask)
        return completion_states(capture.last, batch["completion_ids"].size(1))

    mask = batch["completion_mask"].bool()
    assert torch.allclose(seen[mask], states(disabled=False)[mask], atol=1e-5)
    assert not torch.allclose(seen[mask], states(disabled=True)[mask], atol=1e-3)


@pytest.mark.parametrize("source", ["own-forward", "trl-old-logprob-pass"])
def test_peft_reference_pass_is_not_captured(tiny, prompts, tmp_path, source):
    schedule = SOURCES[source]
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    trainer = make(tiny, prompts, tmp_path, peft_config=lora, beta=0.1, **schedule)
    seen = {}
    real = credit_module.token_weights

    def spy(hidden_states, *args, **kwargs):
        seen["states"] = hidden_states.clone()
        return real(hidden_states, *args, **kwargs)

    with patch.object(credit_module, "token_weights", spy):
        scored = score(trainer, prompts)
    assert "ref_per_token_logps" in scored  # TRL ran its reference pass with the adapters disabled
    assert_policy_states(trainer.model, scored, seen["states"])
    assert trainer._metrics["train"]["denser/own_forward"][-1] == source_metrics(source)[0]


def test_peft_training_forward_reads_the_policy(tiny, prompts, tmp_path):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    trainer = make(tiny, prompts, tmp_path, peft_config=lora, beta=0.1, learning_rate=0.0, max_steps=1)
    seen = {}
    real_weights, real_batch = credit_module.token_weights, trainer._weigh_training_batch

    def spy(hidden_states, *args, **kwargs):
        seen["states"] = hidden_states.clone()
        return real_weights(hidden_states, *args, **kwargs)

    def spy_batch(inputs, policy_pass):
        seen["inputs"] = {key: value.clone() for key, value in inputs.items() if isinstance(value, torch.Tensor)}
        return real_batch(inputs, policy_pass)

    trainer._weigh_training_batch = spy_batch
    with patch.object(credit_module, "token_weights", spy):
        trainer.train()
    inputs = seen["inputs"]
    assert "ref_per_token_logps" in inputs  # TRL ran its reference pass (adapters disabled) while scoring
    order = inputs["denser_row"].argsort()  # back to the scored order token_weights saw
    batch = {key: inputs[key][order] for key in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
    assert_policy_states(trainer.model, batch, seen["states"])
    assert trainer.state.log_history[0]["denser/training_forward"] == 1.0


# ---------------------------------------------------------------------------------------------------------------
# Errors


def test_config_errors(tmp_path):
    base = settings(tmp_path)
    for field, value in [("denser_beta", 1.5), ("denser_beta", -0.1), ("denser_alpha_cross", -1.0),
                         ("denser_alpha_within", float("nan")), ("denser_window_size", -1),
                         ("denser_sample_groups", -2)]:
        with pytest.raises(ValueError, match=field):
            DenseRConfig(**base | {field: value})
    with pytest.raises(ValueError, match="use_liger_kernel"):
        DenseRConfig(**base, use_liger_kernel=True)
    with pytest.raises(ValueError, match="denser_capture.*'auto', 'scoring', 'training'"):
        DenseRConfig(**base, denser_capture="loss")
    with pytest.raises(ValueError, match="steps_per_generation=1"):
        DenseRConfig(**base, denser_capture="training", gradient_accumulation_steps=2)
    with patch.object(DenseRConfig, "world_size", new_callable=PropertyMock, return_value=2):
        with pytest.raises(ValueError, match="per_device_train_batch_size.*num_generations"):
            DenseRConfig(**base | {"per_device_train_batch_size": 2})
        DenseRConfig(**base | {"per_device_train_batch_size": 2, "use_denser": False})  # plain GRPO needs no groups


def test_trainer_errors(tiny, prompts, tmp_path):
    with pytest.raises(ValueError, match="denser_layer"):
        make(tiny, prompts, tmp_path, denser_layer=2)  # the tiny models have 2 decoder layers
    make(tiny, prompts, tmp_path, denser_layer=-2)
    with pytest.raises(TypeError, match="DenseRConfig"):
        make(tiny, prompts, tmp_path, config_class=GRPOConfig)


@contextmanager
def capture_then(edit):
    "`capture_hidden_states` whose recorded states are edited by `edit` when the block closes."
    @contextmanager
    def fake(model, layer=-1):
        with capture_hidden_states(model, layer) as capture:
            yield capture
        edit(capture.states)
    with patch.object(trainer_module, "capture_hidden_states", fake):
        yield


@pytest.mark.parametrize("source", ["own-forward", "trl-old-logprob-pass"])
def test_capture_failures_raise(tiny, prompts, tmp_path, source):
    trainer = make(tiny, prompts, tmp_path, **SOURCES[source])
    with capture_then(lambda states: states.clear()), pytest.raises(RuntimeError, match="captured no hidden states"):
        score(trainer, prompts)
    with capture_then(lambda states: states.__setitem__(0, states[0][:1])), \
            pytest.raises(RuntimeError, match="do not match the batch"):
        score(trainer, prompts)
    assert trainer._capturing is None  # the capture window is closed after an error


def test_training_forward_capture_failures_raise(tiny, prompts, tmp_path):
    for edit, message in [(lambda states: states.clear(), "captured no hidden states"),
                          (lambda states: states.__setitem__(0, states[0][:1]), "do not match the batch")]:
        trainer = make(tiny, prompts, tmp_path, max_steps=1)
        with capture_then(edit), pytest.raises(RuntimeError, match=message):
            trainer.train()
        assert trainer._capturing is None  # the capture window is closed after an error


def test_unrecognised_policy_forward_raises(tiny, prompts, tmp_path):
    trainer = make(tiny, prompts, tmp_path, denser_capture="scoring")
    with patch.object(DenseRTrainer, "_is_policy_forward", lambda self, model: False), \
            pytest.raises(RuntimeError, match="not recognised as the policy"):
        score(trainer, prompts)
    trainer = make(tiny, prompts, tmp_path, max_steps=1)  # training forward: raises before the loss uses advantages
    with patch.object(DenseRTrainer, "_is_policy_forward", lambda self, model: False), \
            pytest.raises(RuntimeError, match="weights would be missing"):
        trainer.train()


@pytest.mark.parametrize("capture", ["scoring", "auto"])
def test_samples_jsonl(tiny, prompts, tmp_path, capture):
    import json

    trainer = make(tiny, prompts, tmp_path, denser_sample_groups=1, max_steps=2, denser_capture=capture)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "denser_samples.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0] * G + [1] * G
    for row in rows:
        assert len(row["tokens"]) == len(row["token_ids"]) == len(row["weights"]) == len(row["token_advantages"])
        assert all(abs(a - row["advantage"] * w) < 1e-5 for a, w in zip(row["token_advantages"], row["weights"]))
        for kind in ("cross", "within"):  # per token, what denser.viz colours; their mean is the completion's
            per_token = [x for x in row[f"{kind}_per_token"] if x is not None]
            assert len(row[f"{kind}_per_token"]) == len(row["tokens"])
            assert (row[kind] is None) == (not per_token)
            if per_token:
                assert abs(sum(per_token) / len(per_token) - row[kind]) < 1e-5
    samples = read_samples(tmp_path)  # what the visualisation notebook reads: per-token divergences included
    assert len(samples) == len(rows) and all(len(s.cross) == len(s.tokens) for s in samples if s.cross is not None)
    assert any(s.cross is not None and any(c == c for c in s.cross) for s in samples)


# ---------------------------------------------------------------------------------------------------------------
# `denser train`

CONFIGS = __import__("pathlib").Path(__file__).resolve().parent.parent / "configs"


def train_parser():
    import argparse

    from denser.train import add_arguments

    parser = argparse.ArgumentParser(prog="denser train")
    add_arguments(parser)
    return parser


@pytest.mark.parametrize("name", ["tiny", "smollm2-arithmetic", "qwen3-0.6b-denser"])
def test_example_configs_parse(name):
    from denser.train import parse

    flags = ["--use_cpu", "true", "--bf16", "false"] if name.startswith("qwen3") else []  # GPU config, CPU parse
    spec = parse(train_parser().parse_args(["--config", str(CONFIGS / f"{name}.yaml"), *flags]))
    script_args, training_args, model_args = spec.script, spec.training, spec.model
    assert isinstance(training_args, DenseRConfig) and training_args.use_denser
    assert model_args.model_name_or_path and script_args.dataset_name
    if name.startswith("qwen3"):  # the reference's flags, all of which its broken command dropped
        assert training_args.use_vllm and training_args.vllm_mode == "colocate"
        assert (training_args.denser_alpha_within, training_args.denser_beta, training_args.epsilon_high) == (0.3, 0.1, 0.28)


def test_flags_override_yaml_and_typos_are_refused(tmp_path):
    from denser.train import parse

    parser = train_parser()
    training_args = parse(parser.parse_args(["--config", str(CONFIGS / "tiny.yaml"), "--denser_beta", "0.25",
                                             "--learning_rate", "3e-4"])).training
    assert (training_args.denser_beta, training_args.learning_rate, training_args.max_steps) == (0.25, 3e-4, 4)
    typo = tmp_path / "typo.yaml"
    typo.write_text("denser_alpha_crosss: 1.0\n")
    with pytest.raises(ValueError, match="denser_alpha_crosss"):
        parse(parser.parse_args(["--config", str(typo)]))
    with pytest.raises(ValueError, match="denser_window_size"):
        parse(parser.parse_args(["--config", str(CONFIGS / "tiny.yaml"), "--denser_window_size", "-3"]))


def test_train_command_runs_tiny_config(tmp_path):
    from denser.train import main

    assert main(["--config", str(CONFIGS / "tiny.yaml"), "--output_dir", str(tmp_path), "--max_steps", "1",
                 "--max_train_samples", "8", "--max_completion_length", "8", "--disable_tqdm", "true"]) == 0
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "denser_samples.jsonl").exists()
