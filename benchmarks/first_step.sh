#!/usr/bin/env bash
# Step times of cpu-quick's GRPO run cut to 3 steps (held-out evaluation at step 0 when EVAL_EVERY > 3, none when 0;
# no final evaluation), with the package and train notebook of a checkout TREE (e.g. a `git worktree` of an older
# commit), the memory settings of denser.reproduce.RUN_ENVIRONMENT and one torch thread. Prints the step times (TRL's
# `step_time`: one `training_step`, the rollout included), the training rewards and the run's seconds.
#   benchmarks/first_step.sh TREE OUT EVAL_EVERY
# e.g. two checkouts side by side, as cpu-quick runs its two arms:
#   git worktree add --detach ../denser-5bbf0bf 5bbf0bf
#   benchmarks/first_step.sh ../denser-5bbf0bf runs/first-step/old 5 & benchmarks/first_step.sh . runs/first-step/new 5 & wait
set -euo pipefail
if [ $# -ne 3 ]; then sed -n 2,9p "$0"; exit 2; fi
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(cd "$1" && pwd)"; mkdir -p "$2"; out="$(cd "$2" && pwd)"; every="$3"
memory=$(cd "$root" && "$root/.venv/bin/python" -c 'from denser.reproduce import RUN_ENVIRONMENT, run_environment
environment = run_environment(); print(*(f"{name}={environment[name]}" for name in RUN_ENVIRONMENT))')
cd "$tree"
env $memory PYTHONPATH="$tree" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 MPLBACKEND=Agg \
  DENSER_DATA_DIR="${DENSER_DATA_DIR:-$(dirname "$root")/shared/data/benchmarks}" \
  "$root/.venv/bin/papermill" -k python3 --language python nbs/experiments/train.ipynb "$out/train.ipynb" \
  -p model_name smollm2-135m-instruct -p method grpo -p dataset rg:basic_arithmetic -p max_steps 3 -p num_generations 8 \
  -p prompts_per_step 2 -p max_completion_length 64 -p learning_rate 3e-5 -p temperature 0.7 -p seed 0 -p eval_every "$every" \
  -p eval_problems 32 -p eval_samples 4 -p eval_max_tokens 64 -p sample_groups 2 -p final_eval_problems 0 \
  -y 'trainer_args: {gradient_checkpointing: false}' -p out_dir "$out" > "$out/papermill.log" 2>&1
"$root/.venv/bin/python" - "$out/metrics.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print(sys.argv[1], "bf16" if metrics.get("bf16") else "fp32", "step s:", [round(t["step_time"], 1) for t in metrics["train"]],
      "rewards:", [round(t["reward"], 3) for t in metrics["train"]], "run s:", round(metrics["seconds"], 1))
PY
