"""Long runs stop cleanly: SIGINT/SIGTERM to `denser reproduce` end every process of its runs, mark them
interrupted and print the command that resumes them; two `denser reproduce` on one folder never execute a
run twice; `denser eval` resumes past a last line that a kill cut short."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from denser.eval import EvalConfig, evaluate, read_records

DENSER = str(Path(sys.executable).parent / "denser")
BENCHMARK_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks")
TINY_RUN = ("{model_name_or_path: tiny-qwen3, dataset_name: 'rg:basic_arithmetic', use_cpu: true, report_to: none, "
            "save_strategy: 'no', use_denser: false, num_generations: 2, per_device_train_batch_size: 2, "
            "max_completion_length: 4, save_model: false}")


def experiment(tmp_path, name, runs):
    "An experiment file of tiny GRPO runs (no report) in `tmp_path`."
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nconfig: {TINY_RUN}\nruns:\n" + "".join(f"  - {run}\n" for run in runs))
    return path


def start(*args, cwd, marker, **popen):
    "`denser reproduce ARGS` in the background; every process it starts inherits the environment `marker`."
    env = dict(os.environ, DENSER_TEST_MARKER=marker)
    return subprocess.Popen([DENSER, "reproduce", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def wait_for(condition, what, timeout=180):
    started = time.time()
    while not condition():
        assert time.time() - started < timeout, f"waited {timeout} s for {what}"
        time.sleep(0.2)


def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def marked(marker):
    "The live processes whose environment carries `marker` (a zombie has exited and does not count)."
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("DENSER_TEST_MARKER") == marker and process.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.Error:
            pass
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_process_of_the_run_and_the_resume_command_completes_it(tmp_path, signum):
    path = experiment(tmp_path, "stoppable", ["{name: long, notebook: train, config: {max_steps: 25}}",
                                              "{name: queued, notebook: train, config: {max_steps: 1}}"])
    run_dir = tmp_path / "runs" / "stoppable" / "long"
    marker = uuid.uuid4().hex
    # its own session, as a terminal's foreground job: Ctrl-C sends SIGINT to the whole process group. A terminal job
    # does not ignore SIGINT, even when pytest itself runs in a background job that does (as `cmd &` in a script).
    runner = start(str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path, marker=marker, start_new_session=True,
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (read_json(run_dir / "progress.json") or {}).get("step", 0) >= 1 or runner.poll() is not None,
             "the first training step")
    assert runner.poll() is None, runner.communicate()
    tree = psutil.Process(runner.pid).children(recursive=True)
    groups = {os.getpgid(p.pid) for p in tree}
    assert len(tree) >= 2 and len(groups) >= 2, "papermill and its kernel, each in a process group of its own"
    if signum == signal.SIGINT:
        os.killpg(runner.pid, signal.SIGINT)
    else:
        runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=60)

    assert runner.returncode == 128 + signum, out + err
    assert marked(marker) == [], f"processes of the run survived the stop:\n{out}{err}"
    status = read_json(run_dir / "status.json")
    assert status["ok"] is False and status["outcome"] == "interrupted", status
    assert signal.Signals(signum).name in status["error"]
    assert not (tmp_path / "runs" / "stoppable" / "queued" / "status.json").exists(), "a run never started is left as it was"
    assert "1 run(s) interrupted, 1 not started" in out + err
    resume = err.split("Resume with:\n", 1)[1].strip()
    assert shlex.split(resume)[:2] == ["denser", "reproduce"], err

    rerun = subprocess.run([DENSER, *shlex.split(resume)[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for name in ("long", "queued"):
        status = read_json(tmp_path / "runs" / "stoppable" / name / "status.json")
        assert status["ok"] is True and status["outcome"] == "ok", (name, status)
    assert (run_dir / "metrics.json").exists()


def test_two_reproduce_calls_on_one_folder_never_execute_a_run_twice(tmp_path):
    path = experiment(tmp_path, "shared", ["{name: 'r{seed}', notebook: train, grid: {seed: [0, 1]}, config: {max_steps: 10}}"])
    runs = tmp_path / "runs"
    marker = uuid.uuid4().hex
    first = start(str(path), "--runs-dir", str(runs), cwd=tmp_path, marker=marker)
    wait_for(lambda: (read_json(runs / "shared" / "r0" / "status.json") or {}).get("outcome") == "running", "r0 to start")
    second = start(str(path), "--runs-dir", str(runs), cwd=tmp_path, marker=marker)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    texts = [out + err for out, err in outputs]

    for name in ("r0", "r1"):
        starts = [text.count(f"{name} (train): started") for text in texts]
        assert sorted(starts) == [0, 1], (name, texts)
        assert read_json(runs / "shared" / name / "status.json")["ok"] is True
    assert "r0 (train): skipped, another denser reproduce is executing it (pid " in texts[1], texts[1]
    assert second.returncode == 1 and "not done: r0, being executed by another denser reproduce" in outputs[1][1]
    assert first.returncode in (0, 1), texts[0]  # r1 was done meanwhile (0) or still running in the second call (1)

    third = subprocess.run([DENSER, "reproduce", str(path), "--runs-dir", str(runs)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and third.stdout.count("done before with the same inputs and code, skipped") == 2, third.stdout


def test_a_second_signal_while_stdout_is_blocked_does_not_abandon_the_stop(tmp_path):
    "SIGTERM, then SIGINT 0.3 s later, with stdout a full pipe nobody reads: the runs still stop, the queued one never starts."
    path = experiment(tmp_path, "blocked", ["{name: long, notebook: train, config: {max_steps: 25}}",
                                            "{name: queued, notebook: train, config: {max_steps: 1}}"])
    run_dir = tmp_path / "runs" / "blocked" / "long"
    marker = uuid.uuid4().hex
    read_end, write_end = os.pipe()
    env = dict(os.environ, DENSER_TEST_MARKER=marker)
    runner = subprocess.Popen([DENSER, "reproduce", str(path), "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path,
                              env=env, stdout=write_end, stderr=subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (read_json(run_dir / "progress.json") or {}).get("step", 0) >= 1 or runner.poll() is not None,
             "the first training step")
    assert runner.poll() is None
    os.set_blocking(write_end, False)
    try:  # fill the pipe nobody reads: every later write of the runner blocks
        while True:
            os.write(write_end, b"x" * 4096)
    except BlockingIOError:
        pass
    os.close(write_end)
    runner.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    runner.send_signal(signal.SIGINT)
    wait_for(lambda: all(entry.split()[0] == str(runner.pid) for entry in marked(marker)),
             "the runs' processes to end while stdout stays blocked", timeout=60)  # only the blocked runner is left
    assert not (tmp_path / "runs" / "blocked" / "queued" / "status.json").exists(), "the queued run started"
    with os.fdopen(read_end, "rb") as pipe:  # unblock the runner and let it finish
        output = pipe.read().decode(errors="replace")
    runner.wait(timeout=60)
    assert runner.returncode == 128 + signal.SIGTERM, output[-2000:]
    assert marked(marker) == []
    status = read_json(run_dir / "status.json")
    assert status["outcome"] == "interrupted" and "SIGTERM" in status["error"], status
    assert not (tmp_path / "runs" / "blocked" / "queued" / "status.json").exists()  # still never started


def test_a_held_lock_skips_the_run_and_a_dead_holders_lock_is_taken_over(tmp_path):
    # `token_credit: ppo` fails in the notebook's first cells: the cheapest run that executes
    path = experiment(tmp_path, "locked", ["{name: bad, notebook: train, config: {use_denser: true, token_credit: ppo}}"])
    run_dir = tmp_path / "runs" / "locked" / "bad"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); time.sleep(600)", str(run_dir / ".lock")],
                              stdout=subprocess.PIPE)
    holder.stdout.readline()
    skipped = subprocess.run([DENSER, "reproduce", str(path), "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 1 and "bad (train): skipped, another denser reproduce is executing it" in skipped.stdout
    assert "1 of 1 not done: bad" in skipped.stderr and not (run_dir / "status.json").exists()

    holder.kill()  # the holder dies with the lock held: the lock file stays, the lock goes
    holder.wait()
    taken = subprocess.run([DENSER, "reproduce", str(path), "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert taken.returncode == 1 and "1 of 1 failed: bad" in taken.stderr, taken.stdout + taken.stderr
    assert read_json(run_dir / "status.json")["outcome"] == "failed"  # executed this time
    assert "token_credit must be one of" in read_json(run_dir / "status.json")["error"]


def test_eval_resumes_past_a_torn_last_line(tmp_path):
    settings = dict(model="tiny-qwen3", benchmarks=["amc23"], n=2, k=[1, 2], max_tokens=6, limit=4, batch_size=3,
                    data_dir=BENCHMARK_DIR)
    full = evaluate(EvalConfig(**settings, out=str(tmp_path / "full")))
    samples = (tmp_path / "full" / "samples" / "amc23.jsonl").read_bytes()
    lines = samples.splitlines(keepends=True)
    assert len(lines) == 4

    # what a SIGKILL during the third append leaves: two records, then half a line
    resumed_dir = tmp_path / "killed"
    (resumed_dir / "samples").mkdir(parents=True)
    (resumed_dir / "settings.json").write_bytes((tmp_path / "full" / "settings.json").read_bytes())
    (resumed_dir / "samples" / "amc23.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    assert sorted(read_records(resumed_dir / "samples" / "amc23.jsonl")) == [0, 1]

    resumed = evaluate(EvalConfig(**settings, out=str(resumed_dir)))
    assert resumed["benchmarks"] == full["benchmarks"]
    # the fragment is gone: each problem once, on a line of its own, as in the uninterrupted run
    assert (resumed_dir / "samples" / "amc23.jsonl").read_bytes() == samples
