"""A TRL user's path: `DenseRTrainer(model="tiny-qwen3")`, and `denser train` from its help to its outputs.

Every mistake a user can make in a config or on the command line ends in one line on stderr (exit status 2)
that names what is wrong and, where a valid name is close, that name.
"""
import importlib.util
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
    for row in ("| `token_credit` | `'denser'` |", "| `denser_beta` | `0.5` |", "| `sampling_seed_per_step` | `False` |"):
        assert row in card.text, row
    assert "ktae_" not in card.text and "token_credit_kwargs" not in card.text  # only the active signal's knobs
    assert "fine-tuned version of `tiny-qwen3` (an offline model of `denser.models`)" in card.text
    assert "None" not in card.text and f'model="{tmp_path}"' in card.text
    assert card.text.index("## DenseR") < card.text.index("## Citations")
    assert json.loads((tmp_path / "denser_run.json").read_text())["finished"] is True


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
    from tiny_trainer import make
    from datasets import Dataset
    from denser.models import load

    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}?"}] for a in range(4) for b in range(4)]})
    trainer = make({"tiny-qwen3": load("tiny-qwen3")}, prompts, tmp_path, max_steps=1, save_strategy="steps", save_steps=1)
    trainer.train()
    card = (tmp_path / "README.md").read_text()
    assert "## DenseR" in card and DENSER_REFERENCE in card and "denser" in card.split("---")[1]


# issue #29: `denser train` fails safely

SAFETY_ERRORS = {  # flags after `--config tiny` -> what the one-line error says
    ("--max_steps", "0"): "max_steps must be a positive number of optimizer steps, or -1 to train num_train_epochs "
                          "(3) epochs; got 0",
    ("--max_steps", "-3"): "got -3",
    ("--num_generations", "0"): "num_generations must be at least 2 (GRPO compares the completions of one prompt), got 0",
    ("--max_completion_length", "0"): "max_completion_length must be at least 1 (tokens generated per completion), got 0",
    ("--report_to", "wandb"): "report_to 'wandb' needs the wandb package, which is not installed",
    ("--report_to", "wandbb"): "report_to 'wandbb' is unknown (did you mean 'wandb'?)",
    ("--resume_from_checkpoint", "true"): "resume_from_checkpoint true: no checkpoint-N directory in",
    ("--token_credit", "no_such_module:signal"): "token_credit 'no_such_module:signal': cannot import 'signal'",
    ("--token_credit_kwargs", "{not json"): "token_credit_kwargs must be a JSON object",
}


@pytest.mark.parametrize("flags", SAFETY_ERRORS)
def test_unsafe_settings_end_in_one_line_before_training(flags, tmp_path, capsys):
    if flags[-1] == "wandb" and importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    status, err = train(["--config", "tiny", "--output_dir", str(tmp_path / "out"), *flags], capsys)
    assert status == 2 and err.startswith("denser train: error: ") and err.count("\n") == 1, err
    assert SAFETY_ERRORS[flags] in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_an_output_dir_under_a_file_ends_in_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    status, err = train(["--config", "tiny", "--output_dir", str(tmp_path / "afile" / "sub")], capsys)
    assert (status, err) == (2, f"denser train: error: output_dir '{tmp_path / 'afile' / 'sub'}' is not a writable "
                                "directory: Not a directory\n")


def test_an_unwritable_output_dir_ends_in_one_line(tmp_path, capsys, monkeypatch):
    "A file is written and removed there first (as root, permissions do not stop writes: the write is made to fail)."
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "NamedTemporaryFile", refuse)
    status, err = train(["--config", "tiny", "--output_dir", str(tmp_path)], capsys)
    assert (status, err) == (2, f"denser train: error: output_dir '{tmp_path}' is not a writable directory: "
                                "Permission denied\n")


def test_tiny_config_gives_denser_weights_and_a_loss(tmp_path, capsys):
    "configs/tiny.yaml rewards digit_share: a random model's groups have contrast, so weights spread and the loss moves."
    assert cli.main(["train", "--config", "tiny", "--max_steps", "2", "--output_dir", str(tmp_path),
                     "--disable_tqdm", "true"]) == 0
    log = read_log_history(tmp_path)
    assert (log["denser/weight_std"] > 0).all() and (log["denser/groups_with_contrast"] > 0).all()
    assert (log["loss"] != 0).any() and (log["grad_norm"] > 0).all()  # on policy the loss is small (~1e-7), not 0


SIGNALS_MODULE = '''
import torch
from denser.credit import Credit

calls = []


def scaled_uniform(batch, scale=1.0):
    "A_i * scale on every token: a custom signal with a knob of its own."
    calls.append(scale)
    return Credit(batch.advantages[:, None].expand_as(batch.completion_mask).to(batch.advantages.dtype) * scale)
'''


def test_a_custom_signal_and_its_knobs_from_a_yaml_config(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_signals.py").write_text(SIGNALS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny = ("model_name_or_path: tiny-qwen3\ndataset_name: reasoning-gym:basic_arithmetic\nmax_train_samples: 8\n"
            "reward_funcs: [digit_share]\nuse_cpu: true\nbf16: false\nreport_to: none\nmax_steps: 1\n"
            "per_device_train_batch_size: 8\nnum_generations: 4\nmax_completion_length: 8\nsave_strategy: 'no'\n"
            "disable_tqdm: true\ntoken_credit: my_signals:scaled_uniform\n")
    (tmp_path / "bad.yaml").write_text(tiny + "token_credit_kwargs: {scal: 2.5}\n")
    status, err = train(["--config", str(tmp_path / "bad.yaml"), "--output_dir", str(tmp_path / "bad")], capsys)
    assert status == 2 and "token_credit_kwargs: 'my_signals:scaled_uniform' takes no keyword 'scal'; it takes scale" in err
    (tmp_path / "good.yaml").write_text(tiny + "token_credit_kwargs: {scale: 2.5}\n")
    assert cli.main(["train", "--config", str(tmp_path / "good.yaml"), "--output_dir", str(tmp_path / "custom")]) == 0
    import my_signals
    assert my_signals.calls == [2.5]
    card = (tmp_path / "custom" / "README.md").read_text()
    assert "| `token_credit` | `'my_signals:scaled_uniform'` |" in card and "| `token_credit_kwargs` | `{'scale': 2.5}` |" in card
    assert "denser_window_size" not in card  # a plain function reads no DenseRConfig knob


def launch(tmp_path, *flags) -> subprocess.Popen:
    "`python -m denser.train --config tiny ...` in a process of its own, stderr piped."
    import signal  # a terminal job takes SIGINT even where pytest runs as a background job that ignores it
    return subprocess.Popen([sys.executable, "-m", "denser.train", "--config", "tiny", "--output_dir", str(tmp_path / "out"),
                             "--disable_tqdm", "true", *flags], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop_after_checkpoint(process, tmp_path, signal_number) -> str:
    "Send `signal_number` once a checkpoint exists; the stderr of the stopped run."
    import time
    deadline = time.monotonic() + 240
    while not list((tmp_path / "out").glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.2)
    process.send_signal(signal_number)
    return process.communicate(timeout=120)[1]


@pytest.mark.parametrize("signal_name, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stopped_run_says_where_in_one_line_and_resumes(signal_name, status, tmp_path, capsys):
    import signal
    long_run = ["--max_steps", "200", "--save_strategy", "steps", "--save_steps", "1"]
    process = launch(tmp_path, *long_run)
    err = stop_after_checkpoint(process, tmp_path, getattr(signal, signal_name))
    assert process.returncode == status, err[-3000:]
    assert "Traceback" not in err and "FutureWarning" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("denser train: interrupted at step ") and "; last checkpoint " in last, err[-3000:]
    assert last.endswith("; resume with --resume_from_checkpoint true")
    out = tmp_path / "out"
    assert json.loads((out / "denser_run.json").read_text())["finished"] is False
    assert cli.main(["eval", "--model", str(out), "--benchmarks", "rg:basic_arithmetic", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"denser eval: error: no finished model in {out} (denser train did not finish there; last "
                          f"checkpoint: {out}/checkpoint-") and err.count("\n") == 1, err
    # resumed: the last checkpoint, whose samples are kept; later ones (of the stopped attempt) are dropped
    checkpoint = int(last.split("last checkpoint ")[1].split(";")[0].rsplit("-", 1)[1])
    assert cli.main(["train", "--config", "tiny", "--output_dir", str(out), "--disable_tqdm", "true", "--max_steps",
                     str(checkpoint + 1), "--save_strategy", "no", "--resume_from_checkpoint", "true"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "denser_samples.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == list(range(checkpoint + 1)), steps
    assert json.loads((out / "denser_run.json").read_text())["finished"] is True
    # a fresh attempt starts its samples over
    assert cli.main(["train", *TINY, "--output_dir", str(out)]) == 0
    assert {json.loads(line)["step"] for line in (out / "denser_samples.jsonl").read_text().splitlines()} == {0}
