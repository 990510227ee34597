#!/usr/bin/env bash
# Run (or resume) an experiment with the package code of one commit, so that development on this checkout does not
# make its finished runs stale (a run's fingerprint includes the package and notebook code).
#   scripts/pinned_reproduce.sh COMMIT EXPERIMENT [denser reproduce options, e.g. --only a,b]
# - the runs go to ./runs/EXPERIMENT of this checkout; finished runs committed under docs/results/EXPERIMENT/raw/
#   are copied there first when missing (a fresh machine resumes where the last one stopped);
# - the code is a git worktree of COMMIT at ../denser-COMMIT (created once);
# - it runs with this checkout's .venv (make setup), one torch thread per run unless OMP_NUM_THREADS is set,
#   offline, with the benchmark files of ../shared/data/benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then sed -n 2,9p "$0"; exit 2; fi
commit="$1"; experiment="$2"; shift 2
root="$PWD"
full=$(git rev-parse --verify "$commit^{commit}")
tree="$(dirname "$root")/denser-${full:0:7}"
[ -x "$root/.venv/bin/python" ] || { echo "no .venv here: run make setup first" >&2; exit 1; }
mkdir -p "runs/$experiment"
if [ -d "docs/results/$experiment/raw" ]; then
  for run in docs/results/"$experiment"/raw/*/; do
    name=$(basename "$run")
    [ -e "runs/$experiment/$name/status.json" ] || { mkdir -p "runs/$experiment/$name"; cp -r "$run". "runs/$experiment/$name/"; }
  done
fi
if [ ! -d "$tree" ]; then git worktree add --detach "$tree" "$full" >/dev/null; fi
[ "$(git -C "$tree" rev-parse HEAD)" = "$full" ] || { echo "$tree is not at $full" >&2; exit 1; }
# glibc keeps freed memory in the process: this checkout's denser.execute.RUN_ENVIRONMENT (the caller's environment
# wins), which commits older than e02f383 do not set for their runs: the same results, far less time in the kernel
memory=$("$root/.venv/bin/python" -c 'from denser.execute import RUN_ENVIRONMENT, run_environment
environment = run_environment(); print(*(f"{name}={environment[name]}" for name in RUN_ENVIRONMENT))')
cd "$tree"
exec env $memory PYTHONPATH="$tree" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 MPLBACKEND=Agg \
  DENSER_DATA_DIR="${DENSER_DATA_DIR:-$(dirname "$root")/shared/data/benchmarks}" \
  "$root/.venv/bin/python" -c 'import sys; from denser.cli import main; sys.exit(main(["reproduce", *sys.argv[1:]]))' \
  "$experiment" --runs-dir "$root/runs" "$@"
