"""scripts/pinned_reproduce.sh: an experiment run with one commit's code in a worktree, resuming committed raw runs."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_pinned_reproduce_uses_the_commit_and_restores_committed_runs(tmp_path):
    clone = tmp_path / "checkout"
    git("clone", "--quiet", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    (clone / ".venv").symlink_to(Path(sys.executable).parents[1])  # this test's environment stands in for make setup
    raw = clone / "docs" / "results" / "ci-tiny" / "raw" / "grpo-s0"
    raw.mkdir(parents=True)
    (raw / "status.json").write_text(json.dumps(dict(ok=True, outcome="ok", fingerprint="0", seconds=1.0)))
    env = dict(os.environ, DENSER_DATA_DIR=str(REPO.parent / "shared" / "data" / "benchmarks"))
    result = subprocess.run([str(clone / "scripts" / "pinned_reproduce.sh"), "HEAD", "ci-tiny", "--dry-run"], cwd=clone,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    head = git("rev-parse", "HEAD", cwd=clone)
    tree = tmp_path / f"denser-{head[:7]}"
    assert git("rev-parse", "HEAD", cwd=tree) == head  # the code runs from a worktree of the commit
    assert "run 1 of 2: grpo-s0 (train)" in result.stdout and "run 2 of 2: denser-s0 (train)" in result.stdout
    assert json.loads((clone / "runs" / "ci-tiny" / "grpo-s0" / "status.json").read_text())["fingerprint"] == "0"
    usage = subprocess.run([str(clone / "scripts" / "pinned_reproduce.sh")], capture_output=True, text=True)
    assert usage.returncode == 2 and "COMMIT EXPERIMENT" in usage.stdout
    shutil.rmtree(tree)
