"""A full disk (issue #30, case 6), on a real small tmpfs: one line naming the problem, exit 2, nothing half-written
counted as finished. Needs permission to mount a tmpfs (root, as on this project's machines and CI); skipped otherwise."""
import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def small_disk(tmp_path, kib: int):
    "A tmpfs of `kib` KiB mounted in `tmp_path`, unmounted afterwards."
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def denser(*args, cwd):
    environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([str(Path(sys.executable).parent / "denser"), *args], cwd=cwd, capture_output=True, text=True,
                          env=environment, timeout=600)


def test_train_on_a_full_disk_ends_in_one_line_and_the_run_stays_unfinished(tmp_path):
    with small_disk(tmp_path, 600) as disk:  # room for the samples and metrics, not for the weights
        done = denser("train", "--config", str(ROOT / "configs" / "tiny.yaml"), "--output_dir", str(disk / "out"),
                      "--disable_tqdm", "true", cwd=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("denser train: error: No space left on device"), done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert json.loads((disk / "out" / "denser_run.json").read_text())["finished"] is False
        assert not (disk / "out" / "model.safetensors").exists() or (disk / "out" / "model.safetensors").stat().st_size > 0


def test_reproduce_on_a_full_disk_ends_in_one_line_and_redoes_what_it_could_not_record(tmp_path):
    with small_disk(tmp_path, 120) as disk:  # room for the first run, not for the second's record
        runs = disk / "runs"
        done = denser("reproduce", "ci-tiny", "--runs-dir", str(runs), cwd=tmp_path)
        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith("denser reproduce: error: No space left on device")
        assert "Traceback" not in done.stdout + done.stderr
        assert "marked interrupted" not in done.stdout
        stopped = next(line for line in done.stdout.splitlines() if line.startswith("stopped:"))
        assert "could not record how they ended" in stopped and "No space left on device" in stopped, stopped
        empty = [str(p) for p in runs.rglob("*") if p.is_file() and p.stat().st_size == 0 and p.name != ".lock"]
        assert not empty, f"half-written files: {empty}"
        dry = denser("reproduce", "ci-tiny", "--runs-dir", str(runs), "--dry-run", cwd=tmp_path)
        unrecorded = [line for line in dry.stdout.splitlines() if "recorded no end" in line]
        assert unrecorded and all("would run" in line or "runs again" in line for line in unrecorded), dry.stdout
