"""DenseR vs plain GRPO training-step time on one model, measured in one run, with the split of each step.

Usage (CPU, one torch thread; each configuration is trained `--rounds` times, alternating GRPO and DenseR):

    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model tiny-qwen3 --out runs/overhead-tiny
    OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py --model smollm2-135m-instruct --steps 3 --out runs/overhead-smollm2

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

import denser.trainer as trainer_module
from denser.models import load
from denser.trainer import DenseRConfig, DenseRTrainer

PARTS = ("generation", "capture forward", "weights", "other scoring", "loss forward", "backward", "optimizer and rest")
KINDS = ("grpo", "denser", "denser-own")  # plain GRPO; DenseR, states from the training forward; from its own forward
CAPTURE = {"denser": "auto", "denser-own": "scoring"}


def digit_share(completions, **kwargs):
    "Share of digits in each completion: varied, so groups have both advantage classes."
    texts = [completion[-1]["content"] for completion in completions]
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in texts]


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
    settings = dict(output_dir=str(Path(args.out) / kind), use_cpu=True, bf16=False, report_to="none",
                    per_device_train_batch_size=args.num_generations * args.groups, num_generations=args.num_generations,
                    max_completion_length=args.completion_length, max_steps=args.steps + 1, logging_steps=1,
                    seed=args.seed, learning_rate=0.0, save_strategy="no", disable_tqdm=True)
    if kind in CAPTURE:
        trainer = DenseRTrainer(copy.deepcopy(model), digit_share, args=DenseRConfig(**settings, denser_capture=CAPTURE[kind]),
                                train_dataset=prompts, processing_class=tokenizer)
    else:
        trainer = GRPOTrainer(copy.deepcopy(model), digit_share, args=GRPOConfig(**settings),
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
    original_weights = trainer_module.token_weights
    trainer_module.token_weights = timed(record, lambda: "weights in loss" if in_loss[0] else "weights", original_weights)
    try:
        trainer.train()
    finally:
        trainer_module.token_weights = original_weights
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
    lengths = [len(trainer._buffered_inputs[0]["completion_mask"][0])] if trainer._buffered_inputs else []
    return dict(kind=kind, steps=steps[1:], hashes=hashes[1:], completion_tokens=lengths)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-qwen3", help="denser.models.load name (default: tiny-qwen3)")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run, after one warm-up step")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, alternating")
    parser.add_argument("--num-generations", type=int, default=8, help="G (default: 8)")
    parser.add_argument("--groups", type=int, default=1, help="prompts per step (default: 1)")
    parser.add_argument("--completion-length", type=int, default=64, help="max_completion_length (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/trainer-overhead")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model, tokenizer = load(args.model)
    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}? Explain step by step."}]
                                            for a in range(8) for b in range(8)]})
    runs = []
    for round_index in range(args.rounds):
        for kind in (KINDS if round_index % 2 == 0 else KINDS[::-1]):
            started = time.perf_counter()
            runs.append(train_once(kind, model, tokenizer, prompts, args))
            print(f"round {round_index} {kind}: {time.perf_counter() - started:.1f} s, step totals wall "
                  f"{[round(s['wall']['total'], 2) for s in runs[-1]['steps']]} cpu "
                  f"{[round(s['cpu']['total'], 2) for s in runs[-1]['steps']]}", flush=True)
    same_batches = len({tuple(run["hashes"]) for run in runs}) == 1
    summary = {clock_name: {kind: {part: statistics.median(step[clock_name][part] for run in runs if run["kind"] == kind
                                                      for step in run["steps"]) for part in (*PARTS, "total")}
                            for kind in KINDS} for clock_name in ("wall", "cpu")}
    ratio = {kind: {clock_name: summary[clock_name][kind]["total"] / summary[clock_name]["grpo"]["total"]
                    for clock_name in ("wall", "cpu")} for kind in CAPTURE}
    # DenseR's own cost, from the split: the parts plain GRPO does not have, over the GRPO step
    added = {kind: {clock_name: sum(summary[clock_name][kind][part] for part in ("capture forward", "weights"))
                    / summary[clock_name]["grpo"]["total"] for clock_name in ("wall", "cpu")} for kind in CAPTURE}
    lines = [f"model {args.model}; G={args.num_generations}, {args.groups} prompt(s) per step, max_completion_length="
             f"{args.completion_length}; {args.rounds} runs x {args.steps} measured steps per configuration "
             f"(median per step, seconds, wall-clock and process CPU); same completions in every run: {same_batches}; "
             f"torch threads {torch.get_num_threads()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| part | GRPO wall s | DenseR wall s | DenseR own-forward wall s | GRPO CPU s | DenseR CPU s | "
             "DenseR own-forward CPU s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for part in (*PARTS, "total"):
        wall, cpu = summary["wall"], summary["cpu"]
        lines.append(f"| {part} | " + " | ".join(f"{times[kind][part]:.3f}" for times in (wall, cpu) for kind in KINDS) + " |")
    lines.append("")
    for kind, label in (("denser", "DenseR (training forward)"), ("denser-own", "DenseR (own forward)")):
        lines.append(f"{label} / GRPO step time: {ratio[kind]['wall']:.3f} (wall), {ratio[kind]['cpu']:.3f} (CPU); "
                     f"from the split (capture forward + weights over the GRPO step): 1 + {added[kind]['wall']:.4f} "
                     f"(wall), 1 + {added[kind]['cpu']:.4f} (CPU)")
    table = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(dict(args=vars(args), runs=runs, summary=summary, ratio=ratio,
                                                       added=added, same_batches=same_batches), indent=1))
    (out / "overhead.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
