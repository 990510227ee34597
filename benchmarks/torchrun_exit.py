"""How many 2-process `denser train` runs end cleanly: `torchrun --standalone --nproc_per_node 2 -m denser.train`,
run `--runs` times in a row, each under a time limit (issue #30.1: a run that hangs at exit ends with status 124).

Usage (CPU, one torch thread per process; each tiny run takes about 20 s on a 2-core machine):

    OMP_NUM_THREADS=1 python benchmarks/torchrun_exit.py --runs 20
    OMP_NUM_THREADS=1 python benchmarks/torchrun_exit.py --runs 20 --out runs/torchrun-exit.json

Before the end-of-training barrier of `denser.train.run`, about 1 run in 4 hung after "model, trainer_state.json
and model card saved" (always rank 1). Prints one line per run and the count of runs that ended with status 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TORCHRUN = str(Path(sys.executable).parent / "torchrun")


def torchrun_train(
    output_dir: Path,  # the run's output_dir
    timeout: float,  # seconds before the run counts as hung
    config: str = "tiny",  # the training config
    extra: list[str] = (),  # more `denser train` flags
) -> tuple[int, float, str]:
    "Exit status (124 when it ran past `timeout`), seconds and stderr of one 2-process `denser train` run."
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), HF_HUB_OFFLINE="1")
    command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "denser.train", "--config", config,
               "--output_dir", str(output_dir), "--disable_tqdm", "true", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=output_dir.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
        status = process.returncode
    except subprocess.TimeoutExpired:  # torchrun's workers run in sessions of their own: kill them with it
        for child in [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]:
            child.kill()
        status, stderr = 124, process.communicate()[1]
    return status, time.perf_counter() - start, stderr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="consecutive runs")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a run counts as hung")
    parser.add_argument("--config", default="tiny", help="training config")
    parser.add_argument("--out", help="also write the statuses and times to this JSON file")
    args, extra = parser.parse_known_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            status, seconds, stderr = torchrun_train(Path(scratch) / f"run{run}", args.timeout, args.config, extra)
            results.append(dict(run=run, status=status, seconds=round(seconds, 1)))
            print(f"run {run + 1}/{args.runs}: rc={status} in {seconds:.1f} s", flush=True)
            if status not in (0, 124):
                print(stderr[-3000:], file=sys.stderr)
    clean = sum(result["status"] == 0 for result in results)
    print(f"{clean}/{args.runs} runs ended with exit status 0")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(runs=results, clean=clean, config=args.config, extra=extra), indent=1))
    return 0 if clean == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
