"""The reproduction pipeline: every experiment file builds offline; a tiny experiment runs end to end
through papermill, resumes, and survives a failing run."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denser.experiment import check_experiment
from denser.reproduce import list_experiments, load_experiment

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
    lines = check_experiment(load_experiment(name), str(tmp_path), stand_ins={"model_name": "tiny-qwen3"},
                             data_dir=offline_data)
    assert len(lines) == len(load_experiment(name).runs)
    assert all(line.endswith("ok") or "nothing to build" in line for line in lines)


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
    status_path.write_text(json.dumps({**status, "fingerprint": "made-by-older-code"}))
    third = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--only", "grpo-s0", cwd=tmp_path)
    assert third.returncode == 0 and "stale" in third.stdout and "grpo-s0 (train): ok" in third.stdout, third.stdout
    forced = reproduce("ci-tiny", "--runs-dir", str(tmp_path), "--only", "denser-s0", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "skipped" not in forced.stdout and "denser-s0 (train): ok" in forced.stdout


def test_a_failing_run_fails_alone(tmp_path):
    experiment = tmp_path / "faulty.yaml"
    experiment.write_text("""
name: faulty
defaults: {model_name: tiny-qwen3, max_steps: 1, num_generations: 2, prompts_per_step: 1, max_completion_length: 4,
           eval_every: 0}
runs:
  - {name: bad, notebook: train, parameters: {method: ppo}}
  - {name: good, notebook: train, parameters: {method: denser}}
report: {notebook: report}
""")
    result = reproduce(str(experiment), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 1
    assert "1 of 3 failed: bad" in result.stderr
    bad = json.loads((tmp_path / "runs" / "faulty" / "bad" / "status.json").read_text())
    assert not bad["ok"] and "method must be one of grpo, uniform, denser" in bad["error"] and "code cell" in bad["error"]
    assert json.loads((tmp_path / "runs" / "faulty" / "good" / "status.json").read_text())["ok"]
    assert "Failed runs (see their log.txt): bad (failed)" in (tmp_path / "runs" / "faulty" / "results.md").read_text()


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    result = reproduce("no-such", cwd=tmp_path)
    assert result.returncode != 0 and "available: ci-tiny" in result.stderr


def test_parameters_cells_parse_and_only_declared_parameters_are_passed(tmp_path):
    "papermill reads every parameter line of every experiment notebook (no 'Unable to parse line' in run logs)."
    from denser.execute import EXPERIMENT_NOTEBOOKS
    from denser.reproduce import declared_parameters

    for notebook in EXPERIMENT_NOTEBOOKS.glob("*.ipynb"):
        cells = [c for c in json.loads(notebook.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assignments = [line for line in "".join(cells[0]["source"]).splitlines() if line and not line.startswith("#")]
        assert len(declared_parameters(notebook)) == len(assignments), notebook.name
