"""A TRL user's path: `DenseRTrainer(model="tiny-qwen3")`, and `denser train` from its help to its outputs.

Every mistake a user can make in a config or on the command line ends in one line on stderr (exit status 2)
that names what is wrong and, where a valid name is close, that name.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset
from huggingface_hub import ModelCard, constants

from denser import cli
from denser.models import CHATML_TEMPLATE
from denser.trainer import DenseRConfig, DenseRTrainer
from denser.train import DENSER_REFERENCE, config_dir
from denser.viz import read_log_history

TINY = ["--config", "tiny", "--max_steps", "1", "--max_train_samples", "8", "--max_completion_length", "8",
        "--logging_steps", "1", "--disable_tqdm", "true"]


def train(argv, capsys) -> tuple[int, str]:
    "Exit status and stderr of `denser train ARGV`, run in this process."
    status = cli.main(["train", *argv])
    return status, capsys.readouterr().err


def test_help_lists_denser_and_common_fields_first(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    short = capsys.readouterr().out
    assert len(short.splitlines()) < 300
    assert short.index("\nDenseR:") < short.index("\ncommon options:") < short.index(" fields:\n")
    for flag in ("--use_denser", "--token_credit", "--ktae_alpha", "--ktae_top", "--sampling_seed_per_step",
                 "--denser_beta", "--model_name_or_path", "--dataset_name", "--push_to_hub"):
        assert flag in short, flag
    assert "--adam_beta1" not in short
    with pytest.raises(SystemExit):
        cli.main(["train", "--help-all"])
    every = capsys.readouterr().out
    assert "--adam_beta1" in every and len(every.splitlines()) > 1000


def length_reward(completions, **_):
    return [float(len(completion[0]["content"])) for completion in completions]


def test_trainer_takes_an_offline_model_name(tmp_path):
    rows = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} + 1?"}] for i in range(4)]})
    args = DenseRConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", max_steps=1,
                        per_device_train_batch_size=4, num_generations=4, max_completion_length=8, seed=3)
    trainer = DenseRTrainer("tiny-qwen3", length_reward, args=args, train_dataset=rows)
    assert type(trainer.model).__name__ == "Qwen3ForCausalLM"
    assert trainer.processing_class.chat_template == CHATML_TEMPLATE
    assert set(trainer.model.model_tags) == {"trl", "grpo", "denser"}
    trainer.train()
    assert trainer.state.global_step == 1
    grpo = DenseRTrainer("tiny-llama", length_reward, train_dataset=rows,
                         args=DenseRConfig(output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False,
                                           report_to="none", use_denser=False, num_generations=4,
                                           per_device_train_batch_size=4))
    assert type(grpo.model).__name__ == "LlamaForCausalLM"
    assert set(grpo.model.model_tags) == {"trl", "grpo"}


def test_train_saves_state_and_a_denser_model_card(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--output_dir", str(tmp_path), "--denser_beta", "0.5"]) == 0
    assert (tmp_path / "model.safetensors").exists()
    assert list(read_log_history(tmp_path).index) == [1]
    assert json.loads((tmp_path / "trainer_state.json").read_text())["global_step"] == 1
    card = ModelCard.load(tmp_path / "README.md")
    assert {"trl", "grpo", "denser"} <= set(card.data.tags)
    assert "## DenseR" in card.text and DENSER_REFERENCE in card.text
    for row in ("| `token_credit` | `'denser'` |", "| `denser_beta` | `0.5` |", "| `ktae_alpha` | `1.0` |",
                "| `sampling_seed_per_step` | `False` |"):
        assert row in card.text, row
    assert card.text.index("## DenseR") < card.text.index("## Citations")


def test_plain_grpo_card_has_no_denser_tag_or_section(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--output_dir", str(tmp_path), "--use_denser", "false"]) == 0
    card = ModelCard.load(tmp_path / "README.md")
    assert "denser" not in card.data.tags and {"trl", "grpo"} <= set(card.data.tags)
    assert "## DenseR" not in card.text
    assert list(read_log_history(tmp_path).index) == [1]


def write(tmp_path, text) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


CONFIG_ERRORS = {  # YAML text -> what the one-line error says
    "model_name_or_path: tiny-qwen3\n  denser_beta: 0.5\n":
        "is not valid YAML: mapping values are not allowed here at line 2, column 14",
    "- denser_beta: 0.5\n": "must hold a YAML mapping of field names to values, not a list",
    "env: [A]\n": "`env` must map environment variable names to values",
    "denser_betaa: 0.5\nktae_alph: 2\n":
        "unknown fields 'denser_betaa' (did you mean 'denser_beta'?), 'ktae_alph' (did you mean 'ktae_alpha'?)",
    "learning_rate: fast\n": "argument --learning_rate/--learning-rate: invalid float value: 'fast'",
    "denser_beta: 2\n": "denser_beta",
    "token_credit: densr\n": "token_credit must be one of",
}


@pytest.mark.parametrize("text", CONFIG_ERRORS)
def test_config_mistakes_end_in_one_line(text, tmp_path, capsys):
    status, err = train(["--config", write(tmp_path, text)], capsys)
    assert status == 2 and err.startswith("denser train: error: ") and err.count("\n") == 1, err
    assert CONFIG_ERRORS[text] in err


FLAG_ERRORS = {  # flags after `--config tiny` -> what the one-line error says
    ("--denser_betaa", "0.5"): "unrecognized arguments: --denser_betaa 0.5 (did you mean '--denser_beta'?)",
    ("--model_name_or_path", "tiny-qwen"): "unknown model 'tiny-qwen' (did you mean 'tiny-qwen3'?)",
    ("--model_name_or_path", "no-such-owner/no-such-model"): "could not load model 'no-such-owner/no-such-model': ",
    ("--model_name_or_path", ""): "model_name_or_path is required",
    ("--dataset_name", "rg:basic_arithmetc"):
        "unknown reasoning-gym task 'basic_arithmetc' (did you mean 'basic_arithmetic'?)",
    ("--dataset_name", "basic_arithmetic"):
        "unknown dataset 'basic_arithmetic' (did you mean 'rg:basic_arithmetic'?)",
    ("--dataset_name", "aime-24"): "unknown dataset 'aime-24' (did you mean 'aime24'?)",
    ("--dataset_name", ""): "dataset_name is required",
    ("--eval_strategy", "steps", "--eval_steps", "1", "--eval_dataset_name", "rg:chain_summ"):
        "unknown reasoning-gym task 'chain_summ' (did you mean 'chain_sum'?)",
    ("--reward_funcs", "reasoning_gym_rewards"): "(did you mean 'reasoning_gym_reward'?)",
    ("--ktae_alph", "2"): "--ktae_alph",  # a prefix is not taken for --ktae_alpha
}


@pytest.mark.parametrize("flags", FLAG_ERRORS)
def test_flag_mistakes_end_in_one_line(flags, tmp_path, capsys):
    status, err = train(["--config", "tiny", "--output_dir", str(tmp_path), *flags], capsys)
    assert status == 2 and err.startswith("denser train: error: ") and err.count("\n") == 1, err
    assert FLAG_ERRORS[flags] in err


def test_push_to_hub_offline_ends_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    status, err = train(["--config", "tiny", "--output_dir", str(tmp_path), "--push_to_hub", "true"], capsys)
    assert (status, err) == (2, "denser train: error: push_to_hub needs the network, but HF_HUB_OFFLINE is set\n")
    assert not (tmp_path / "model.safetensors").exists()


def test_a_directory_without_a_model_ends_in_one_line(tmp_path, capsys):
    status, err = train(["--config", "tiny", "--model_name_or_path", str(tmp_path)], capsys)
    assert status == 2 and err.count("\n") == 1 and f"could not load model {str(tmp_path)!r}: " in err


def test_a_missing_config_names_the_example_configs(capsys):
    status, err = train(["--config", "tiyn.yaml"], capsys)
    training_configs = sorted(p.stem for p in config_dir().glob("*.yaml") if "compute_environment" not in p.read_text())
    assert (status, err) == (2, f"denser train: error: config file 'tiyn.yaml' not found (did you mean 'tiny'?); "
                                f"example configs: {', '.join(training_configs)}\n")
    assert "deepspeed_zero3" not in err  # an accelerate config is not offered as a training config


def test_an_accelerate_config_is_refused_with_how_to_launch_it(capsys):
    status, err = train(["--config", "deepspeed_zero3"], capsys)
    assert status == 2 and "is an accelerate config (how to launch), not a training config" in err
    assert "accelerate launch --config_file" in err


def test_a_bad_flag_value_is_argparse_error_with_short_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--config", "tiny", "--learning_rate", "abc"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == ("usage: denser train [--config FILE.yaml] [--FIELD VALUE ...]\ndenser train: error: argument "
                   "--learning_rate/--learning-rate: invalid float value: 'abc'\n")


def test_python_m_denser_train_is_denser_train(tmp_path):
    "What `accelerate launch -m denser.train` runs on each process: the same command, the same one-line errors."
    done = subprocess.run([sys.executable, "-m", "denser.train", "--config", "tiny", "--ktae_alfa", "2"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == ("denser train: error: unrecognized arguments: --ktae_alfa 2 "
                                            "(did you mean '--ktae_alpha'?)")
    assert "Traceback" not in done.stderr


def test_checkpoint_model_card_names_denser(tmp_path):
    "TRL writes the card at every checkpoint save; DenseRTrainer's override adds DenseR's section and tag there too."
    from test_trainer import make
    from datasets import Dataset
    from denser.models import load

    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}?"}] for a in range(4) for b in range(4)]})
    trainer = make({"tiny-qwen3": load("tiny-qwen3")}, prompts, tmp_path, max_steps=1, save_strategy="steps", save_steps=1)
    trainer.train()
    card = (tmp_path / "README.md").read_text()
    assert "## DenseR" in card and DENSER_REFERENCE in card and "denser" in card.split("---")[1]
