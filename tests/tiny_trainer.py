"""Tiny-model trainers on CPU, a few seconds a run: what the trainer tests share with the tests of the credit
signals, the rivals, the study and `denser train` (the fixtures `tiny` and `prompts` are in conftest.py)."""
import copy

from denser.rewards import digit_share  # dense: nearly every group has both advantage classes
from denser.trainer import DenseRConfig, DenseRTrainer

G = 4  # completions per prompt

SOURCES = {"training-forward": {}, "own-forward": {"denser_capture": "scoring"},
           "trl-old-logprob-pass": {"num_iterations": 2}}  # where the hidden states come from: the settings of each


def settings(tmp_path, **overrides):
    "CPU settings for a few-second run; `overrides` win."
    return dict(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=G,
                num_generations=G, max_completion_length=12, max_steps=3, logging_steps=1, seed=0,
                learning_rate=1e-2, save_strategy="no", disable_tqdm=True) | overrides


def make(tiny, prompts, tmp_path, trainer_class=DenseRTrainer, config_class=DenseRConfig, model="tiny-qwen3",
         peft_config=None, **overrides):
    "A trainer of a copy of the tiny model `model` on `prompts`, rewarded by `digit_share`."
    policy, tokenizer = tiny[model]
    return trainer_class(copy.deepcopy(policy), digit_share, args=config_class(**settings(tmp_path, **overrides)),
                         train_dataset=prompts, processing_class=tokenizer, peft_config=peft_config)
