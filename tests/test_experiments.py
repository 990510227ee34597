"""The reproduction pipeline: every experiment file builds offline; a tiny experiment runs end to end
through papermill, resumes, and survives a failing run."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denser.experiment import CPU_STAND_INS, list_experiments, load_experiment
from denser.run import RunSpec

SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
DENSER = str(Path(sys.executable).parent / "denser")


@pytest.fixture(scope="module")
def offline_data(tmp_path_factory):
    "Local copies of the benchmarks plus a 3-row DAPO-Math stand-in."
    data = tmp_path_factory.mktemp("data")
    for path in SHARED_BENCHMARKS.glob("*.jsonl"):
        shutil.copy(path, data)
    rows = [dict(problem=f"What is {i} + {i}?", answer=str(2 * i)) for i in range(3)]
    (data / "dapo-math-17k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(data)


@pytest.mark.parametrize("name", list_experiments())
def test_every_experiment_builds_offline(name, offline_data, tmp_path):
    "Every run's spec parses (GPU experiments with CPU stand-ins) and its training data is made offline."
    experiment = load_experiment(name)
    for run in experiment.runs:
        if run.config is None:
            continue
        stand_ins = {k: v for k, v in CPU_STAND_INS.items() if k in run.config or k == "use_cpu"}
        spec = RunSpec.from_mapping({**run.config, "model_name_or_path": "tiny-qwen3", "data_dir": offline_data},
                                    f"{name} run {run.name}", output_dir=str(tmp_path), **stand_ins)
        if spec.script.dataset_name:
            assert len(spec.train_data().dataset) > 0, run.name


def test_a_misspelt_key_stops_the_dry_run_in_one_line(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("config: {model_name_or_path: tiny-qwen3}\nruns:\n  - {name: a, notebook: train, config: {denser_bta: 0.3}}\n")
    result = reproduce(str(path), "--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'denser_bta'" in lines[0] and "did you mean 'denser_beta'" in lines[0], result.stderr


def test_a_config_file_is_a_run_of_an_experiment_unchanged(tmp_path):
    "configs/tiny.yaml pasted as a run's config trains exactly as `denser train --config tiny`."
    import yaml
    from denser.train import config_dir
    tiny = yaml.safe_load((config_dir() / "tiny.yaml").read_text())
    path = tmp_path / "pasted.yaml"
    path.write_text(yaml.safe_dump(dict(name="pasted", runs=[dict(name="tiny", notebook="train", config=tiny)])))
    result = reproduce(str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    trained = subprocess.run([DENSER, "train", "--config", "tiny", "--output_dir", str(tmp_path / "cli")],
                             capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert trained.returncode == 0, trained.stderr
    from denser.results import RunResult
    notebook, cli = RunResult.load(tmp_path / "runs" / "pasted" / "tiny"), RunResult.load(tmp_path / "cli")
    keys = ("step", "loss", "reward", "grad_norm", "completions/mean_length")
    assert [{k: row.get(k) for k in keys} for row in notebook.train] == [{k: row.get(k) for k in keys} for row in cli.train]
    given = {k: v for k, v in tiny.items() if k != "output_dir"}  # the runner and the flag set their own folder
    assert {k: v for k, v in notebook.config.items() if k != "output_dir"} == given
    assert {k: v for k, v in cli.config.items() if k != "output_dir"} == given


def reproduce(*args, cwd):
    return subprocess.run([DENSER, "reproduce", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_tiny_experiment_end_to_end_then_resume(tmp_path):
    first = reproduce("ci-tiny", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "ci-tiny"
    for name in ("results.md", "results.csv", "summary.csv", "held_out_by_step.csv", "training_reward.png",
                 "held_out_accuracy.png", "pass_at_k.png"):
        assert (out / name).stat().st_size > 0, name
    assert "grpo-s0" in (out / "results.md").read_text() and "denser-s0" in (out / "results.md").read_text()
    metrics = json.loads((out / "denser-s0" / "metrics.json").read_text())
    assert metrics["schema"] == 1 and metrics["arm"] == "denser" and metrics["method"] == "denser"
    assert [e["step"] for e in metrics["held_out"]] == [0, 1, 2]
    assert (out / "denser-s0" / "train.ipynb").exists() and (out / "denser-s0" / "log.txt").exists()
    log = (out / "denser-s0" / "log.txt").read_text()
    assert "Unable to parse line" not in log and "Passed unknown parameter" not in log  # no papermill noise
    assert metrics["final"]["problems"] == 4 and 0 <= metrics["aulc"] <= 1
    assert not (out / "paired.csv").exists()  # no baseline_arm, no paired table

    from denser.execute import experiment_notebook, run_notebook  # the report paired by seed against one arm
    run_notebook(experiment_notebook("report"), tmp_path / "paired-report", dict(out_dir=str(out), baseline_arm="grpo"))
    paired = (out / "paired.csv").read_text()
    assert "denser - grpo,gain,1," in paired and "denser - grpo,minutes,1," in paired, paired
    assert "## Paired by seed against grpo" in (out / "results.md").read_text()

    started = time.time()
    second = reproduce("ci-tiny", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert second.returncode == 0
    assert second.stdout.count("skipped") == 2, second.stdout
    assert time.time() - started < 120  # only the report runs again

    status_path = out / "grpo-s0" / "status.json"  # a result made by other code is stale: rerun, never reused
    status = json.loads(status_path.read_text())
    status_path.write_text(json.dumps({**status, "code": {**status["code"], "denser/weights.py": "edited"}}))
    dry = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--dry-run", cwd=tmp_path)
    assert "grpo-s0 (train): would run (code changed: denser/weights.py)" in dry.stdout, dry.stdout
    assert "denser-s0 (train): done, would skip" in dry.stdout, dry.stdout
    third = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--only", "grpo-s0", cwd=tmp_path)
    assert third.returncode == 0 and "code changed" in third.stdout and "grpo-s0 (train): ok" in third.stdout, third.stdout
    (out / "denser-s0" / "metrics.json").write_text('{"schema": 1, "na')  # a torn record is not a finished run
    dry = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--dry-run", cwd=tmp_path)
    assert "denser-s0 (train): would run (" in dry.stdout and "metrics.json: not a readable result record" in dry.stdout
    (out / "grpo-s0" / "status.json").write_text('{"ok": tr')  # a torn status names its file and reruns the run
    dry = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "status.json: not a readable status record" in dry.stdout, dry.stdout + dry.stderr
    (out / "grpo-s0" / "status.json").write_text("[]")
    dry = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--dry-run", cwd=tmp_path)
    assert "status.json: a status record is a JSON object" in dry.stdout, dry.stdout + dry.stderr
    forced = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--only", "denser-s0", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "skipped" not in forced.stdout and "denser-s0 (train): ok" in forced.stdout


def test_a_failing_run_fails_alone(tmp_path):
    experiment = tmp_path / "faulty.yaml"
    experiment.write_text("""
name: faulty
config: {model_name_or_path: tiny-qwen3, dataset_name: "rg:basic_arithmetic", max_train_samples: 1, use_cpu: true,
         report_to: none, save_strategy: "no", max_steps: 1, num_generations: 2, per_device_train_batch_size: 2,
         max_completion_length: 4, save_model: false}
runs:
  - {name: bad, notebook: train, config: {token_credit: ppo}}
  - {name: good, notebook: train, config: {token_credit: denser}}
report: {notebook: report}
""")
    result = reproduce(str(experiment), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 1
    assert "1 of 3 failed: bad" in result.stderr
    bad = json.loads((tmp_path / "runs" / "faulty" / "bad" / "status.json").read_text())
    assert not bad["ok"] and "token_credit must be one of" in bad["error"] and "code cell" in bad["error"]
    assert json.loads((tmp_path / "runs" / "faulty" / "good" / "status.json").read_text())["ok"]
    assert "Runs left out (see their log.txt): bad (" in (tmp_path / "runs" / "faulty" / "results.md").read_text()


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    result = reproduce("no-such", cwd=tmp_path)
    assert result.returncode != 0 and "available: " in result.stderr and "ci-tiny" in result.stderr


def test_parameters_cells_parse_and_only_declared_parameters_are_passed(tmp_path):
    "papermill reads every parameter line of every experiment notebook (no 'Unable to parse line' in run logs)."
    from denser.execute import EXPERIMENT_NOTEBOOKS
    from denser.experiment import declared_parameters

    for notebook in EXPERIMENT_NOTEBOOKS.glob("*.ipynb"):
        cells = [c for c in json.loads(notebook.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assignments = [line for line in "".join(cells[0]["source"]).splitlines() if line and not line.startswith("#")]
        assert len(declared_parameters(notebook)) == len(assignments), notebook.name


def test_a_training_run_is_stale_when_the_code_it_imports_changes():
    "The train notebook's code record holds the trainer's modules, not the plotting ones."
    from denser.execute import experiment_notebook
    from denser.experiment import code_record
    record = code_record(experiment_notebook("train"))
    assert {"denser/weights.py", "denser/align.py", "denser/trainer.py", "denser/run.py"} <= set(record)
    assert "denser/viz.py" not in record and "denser/stats.py" not in record


def test_an_unwritable_runs_dir_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    result = reproduce("ci-tiny", "--runs-dir", str(tmp_path / "afile" / "sub"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--runs-dir" in result.stderr and "is not a writable directory" in result.stderr


def test_an_unknown_only_run_is_one_line_with_the_prefix(tmp_path):
    result = reproduce("ci-tiny", "--only", "nope", "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("denser reproduce: error: --only: unknown run 'nope'"), result.stderr
