"""Held-out evaluation sampling with and without the shared prompt cache of `denser.eval.HFBackend`.

Usage (CPU, one torch thread):

    OMP_NUM_THREADS=1 python benchmarks/shared_prompt_cache.py --out runs/shared-prompt-cache

The same questions (the first `--problems` of the held-out basic_arithmetic split, as the cpu-quick experiment
evaluates them), `--samples` samples each, at most `--max-tokens` new tokens: once as `n` completions per prompt
(each prompt read once, its cache repeated), once as every prompt repeated `n` times with n=1 (each row reads its
prompt: what `generate` does alone). Wall and process CPU seconds, best of `--repeats`, alternating; and whether the
greedy completions of the two paths agree (sampled ones come from one random stream over the batch, so they can
differ after the first token whose logits differ in the last bits).
"""
import argparse
import json
import time
from pathlib import Path

import torch

from denser.eval import HFBackend, load_eval_set, prompt_ids


def clocks():
    return time.perf_counter(), time.process_time()


def held_out_options(
    description: str,  # the script's
    out: str,  # default output folder
) -> argparse.Namespace:
    "The options of a held-out evaluation benchmark: model, questions, samples, tokens, repeats, output folder."
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=out)
    return parser.parse_args()


def main():
    args = held_out_options(__doc__.splitlines()[0], "runs/shared-prompt-cache")
    backend = HFBackend(args.model)
    held_out = load_eval_set("rg:basic_arithmetic", limit=args.problems)
    prompts = [prompt_ids(backend.tokenizer, row["problem"]) for row in held_out.rows]
    repeated = [p for p in prompts for _ in range(args.samples)]
    ways = {"shared prompt cache": lambda temperature: backend.generate(prompts, args.samples, temperature, args.max_tokens, [0] * len(prompts)),
            "prompt read by every row": lambda temperature: backend.generate(repeated, 1, temperature, args.max_tokens, [0] * len(repeated))}
    best = {name: (float("inf"), float("inf")) for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            started = clocks()
            way(0.7)
            seconds = tuple(now - then for now, then in zip(clocks(), started))
            best[name] = tuple(min(a, b) for a, b in zip(best[name], seconds))
    greedy = {name: [c.text for cs in way(0.0) for c in cs] for name, way in ways.items()}
    shared, plain = greedy.values()
    agree = sum(a == b for a, b in zip(shared, plain))
    prompt_tokens = sum(len(p) for p in repeated)
    lines = [f"model {args.model}; {args.problems} held-out questions x {args.samples} samples, at most {args.max_tokens} "
             f"new tokens, temperature 0.7; {prompt_tokens} prompt tokens in the batch ({prompt_tokens // len(repeated)} "
             f"per row); torch threads {torch.get_num_threads()}; best of {args.repeats}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| way | wall s | CPU s |", "|---|---:|---:|"]
    lines += [f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, (wall, cpu) in best.items()]
    ratio = best["prompt read by every row"][1] / best["shared prompt cache"][1]
    lines += ["", f"speed-up (CPU): {ratio:.2f}x; greedy completions identical in {agree} of {len(shared)} rows"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shared_prompt_cache.json").write_text(json.dumps(dict(args=vars(args), best=best, agree=agree, rows=len(shared)), indent=1))
    (out / "shared_prompt_cache.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
