"""How far bf16 autocast moves DenseR's hidden states and token weights on a real model (one batch, CPU).

Usage: OMP_NUM_THREADS=1 python benchmarks/bf16_states.py --model smollm2-135m-instruct --out runs/bf16-states

Samples G completions of a few held-out prompts with the fp32 model, then runs the same forward twice over
prompt + completion, in fp32 and under `torch.autocast("cpu", dtype=torch.bfloat16)` (what `bf16=True`
does in training), captures the last decoder layer's states, and compares: the states (relative error,
cosine), DenseR's token weights at the reference knobs and at full weights (max |dw|), with rewards made
up so that every group has both classes.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from denser.capture import capture_hidden_states, completion_states
from denser.data import reasoning_gym_dataset
from denser.eval import HFBackend, prompt_ids
from denser.models import load
from denser.weights import token_weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="basic_arithmetic_2digit")
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", default="runs/bf16-states")
    args = parser.parse_args()
    model, tokenizer = load(args.model)
    model.eval()
    rows = reasoning_gym_dataset(args.task, n=args.groups, seed=0, split="eval", distinct=True)
    prompts = [prompt_ids(tokenizer, q) for q in rows["question"]]
    samples = HFBackend.from_model(model, tokenizer).generate(prompts, args.num_generations, 0.7, args.max_tokens, [0])
    pairs = [(p, tokenizer(c.text, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id])
             for p, group in zip(prompts, samples) for c in group]
    width_p, width_c = max(len(p) for p, _ in pairs), max(len(c) for _, c in pairs)
    ids = torch.full((len(pairs), width_p + width_c), tokenizer.pad_token_id)
    attention = torch.zeros_like(ids)
    for row, (p, c) in enumerate(pairs):
        ids[row, width_p - len(p):width_p + len(c)] = torch.tensor(p + c)
        attention[row, width_p - len(p):width_p + len(c)] = 1
    mask = attention[:, width_p:]
    states = {}
    for precision in ("fp32", "bf16"):
        started = time.process_time()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            with capture_hidden_states(model, layer=-1) as capture:
                model(input_ids=ids, attention_mask=attention)
        states[precision] = completion_states(capture.states[0], width_c).float()
        print(f"{precision} forward: {time.process_time() - started:.2f} CPU s", flush=True)
    valid = mask.bool()
    a, b = states["fp32"][valid], states["bf16"][valid]
    relative = ((a - b).norm(dim=-1) / a.norm(dim=-1)).tolist()
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1).tolist()
    advantages = torch.tensor([1.0, -1.0] * (len(pairs) // 2))
    result = dict(model=args.model, rows=len(pairs), completion_tokens=int(valid.sum()),
                  state_relative_error=dict(median=sorted(relative)[len(relative) // 2], max=max(relative)),
                  state_cosine_min=min(cosine), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    for label, knobs in (("reference knobs (beta 0.1, alpha_within 0.3)", dict(beta=0.1, alpha_within=0.3)),
                         ("full weights (beta 1)", dict(beta=1.0))):
        weights = {p: token_weights(s, advantages, mask, args.num_generations, **knobs).weights for p, s in states.items()}
        difference = (weights["fp32"] - weights["bf16"]).abs()[valid]
        result[label] = dict(max_abs_weight_difference=float(difference.max()),
                             mean_abs_weight_difference=float(difference.mean()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bf16_states.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
