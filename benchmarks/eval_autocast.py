"""The held-out evaluation of a bf16 training run: weights cast at every token (before) or once per call (after).

Usage (CPU, one torch thread):

    OMP_NUM_THREADS=1 python benchmarks/eval_autocast.py --out runs/eval-autocast

A bf16 run's policy is what accelerate prepares: fp32 weights, `forward` wrapped in a bf16 autocast context. Its
held-out evaluation (the train notebook's: the first `--problems` questions of the held-out basic_arithmetic
split, `--samples` samples each, at most `--max-tokens` new tokens, temperature 0.7, through
`denser.eval.sample_records`) is sampled three ways: fp32 (the model before accelerate wraps it, for scale);
bf16 as the forward's own context gives it (the context opens and closes at every decoded token, and autocast
drops its weight casts when the outermost context closes: the weights are cast again for every token); and bf16
inside one context for the whole call (`HFBackend.from_model(..., autocast=torch.bfloat16)`: cast once). Wall and
process CPU seconds, best of `--repeats`, alternating; and whether the two bf16 ways sampled the same records.
"""
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from denser.eval import EvalConfig, HFBackend, load_eval_set, sample_records
from denser.models import load
from shared_prompt_cache import clocks, held_out_options  # this folder's: same options, same clocks


def main():
    args = held_out_options(__doc__.splitlines()[0], "runs/eval-autocast")
    model, tokenizer = load(args.model)
    model.eval()
    held_out = load_eval_set("rg:basic_arithmetic", limit=args.problems)
    config = EvalConfig(model=args.model, benchmarks=["rg:basic_arithmetic"], n=args.samples, k=[1],
                        max_tokens=args.max_tokens, seed=0, greedy=False)
    indices = list(range(len(held_out.rows)))
    sample = lambda backend: sample_records(backend, held_out, indices, config)
    fp32 = HFBackend.from_model(model, tokenizer)
    best, records = {}, {}
    started = clocks()
    records["fp32"] = sample(fp32)
    best["fp32"] = tuple(now - then for now, then in zip(clocks(), started))
    prepared = Accelerator(cpu=True, mixed_precision="bf16").prepare_model(model)  # forward in bf16 autocast
    ways = {"bf16, cast at every token (before)": HFBackend.from_model(prepared, tokenizer),
            "bf16, cast once per call (after)": HFBackend.from_model(prepared, tokenizer, autocast=torch.bfloat16)}
    for _ in range(args.repeats):
        for name, backend in ways.items():
            started = clocks()
            records[name] = sample(backend)
            seconds = tuple(now - then for now, then in zip(clocks(), started))
            best[name] = tuple(min(a, b) for a, b in zip(best.get(name, (float("inf"),) * 2), seconds))
    before, after = (records[name] for name in ways)
    same = [a["samples"] == b["samples"] for a, b in zip(before, after)]
    tokens = {name: sum(sum(r["tokens"]) for r in rows) for name, rows in records.items()}
    lines = [f"model {args.model}; {args.problems} held-out questions x {args.samples} samples, at most {args.max_tokens} "
             f"new tokens, temperature 0.7; torch threads {torch.get_num_threads()}; bf16 ways best of {args.repeats} "
             f"(fp32 once); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| way | wall s | CPU s | sampled tokens | mean accuracy |", "|---|---:|---:|---:|---:|"]
    for name, (wall, cpu) in best.items():
        accuracy = sum(sum(r["correct"]) for r in records[name]) / sum(len(r["correct"]) for r in records[name])
        lines.append(f"| {name} | {wall:.1f} | {cpu:.1f} | {tokens[name]} | {accuracy:.3f} |")
    names = list(ways)
    lines += ["", f"after / before (CPU): {best[names[1]][1] / best[names[0]][1]:.2f}; the two bf16 ways sampled the "
              f"same completions for {sum(same)} of {len(same)} questions"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_autocast.json").write_text(json.dumps(dict(args=vars(args), best=best, tokens=tokens,
                                                            same=sum(same), questions=len(same)), indent=1))
    (out / "eval_autocast.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
