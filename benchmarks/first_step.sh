#!/usr/bin/env bash
# Step times of cpu-quick's GRPO run cut to 3 steps (the `first-step` experiment, nbs/experiments/first-step.yaml),
# run by `denser reproduce` with the package and notebooks of a checkout TREE (e.g. a `git worktree` of another
# commit that has the experiment) and one torch thread. Prints the step times (TRL's `step_time`: one
# `training_step`, the rollout included), the training rewards and the run's seconds.
#   benchmarks/first_step.sh TREE OUT
# e.g. two checkouts side by side:
#   git worktree add --detach ../denser-other COMMIT
#   benchmarks/first_step.sh ../denser-other runs/first-step/other & benchmarks/first_step.sh . runs/first-step/this & wait
set -euo pipefail
if [ $# -ne 2 ]; then sed -n 2,9p "$0"; exit 2; fi
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(cd "$1" && pwd)"; mkdir -p "$2"; out="$(cd "$2" && pwd)"
cd "$tree"
PYTHONPATH="$tree" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 MPLBACKEND=Agg \
  DENSER_DATA_DIR="${DENSER_DATA_DIR:-$(dirname "$root")/shared/data/benchmarks}" \
  "$root/.venv/bin/denser" reproduce first-step --runs-dir "$out" > "$out/reproduce.log" 2>&1
PYTHONPATH="$tree" "$root/.venv/bin/python" - "$out/first-step/grpo-3-steps" <<'PY'
import sys
from denser.results import RunResult
result = RunResult.load(sys.argv[1])
print(sys.argv[1], "bf16" if result.bf16 else "fp32", "step s:", [round(t["step_time"], 1) for t in result.train],
      "rewards:", [round(t["reward"], 3) for t in result.train], "run s:", round(result.seconds, 1))
PY
