"Prompts, reasoning-gym splits and benchmark loaders on the shared files and on generated fixtures (offline)."
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from denser.data import (BENCHMARKS, DAPO_MATH, DEFAULT_TASK, HARNESS_INSTRUCTION, PROMPT_TEMPLATES, SYSTEM_PROMPT,
                         build_prompt, load_benchmark, load_dapo_math, reasoning_gym_dataset, split_of)
from denser.rewards import math_accuracy_reward, reasoning_gym_reward

SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
EXPECTED_ROWS = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40}


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_prompt_keeps_the_question_verbatim(question):
    prompt = build_prompt(question)
    assert prompt == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def test_a_prompt_template_changes_the_prompt_and_nothing_else():
    reference, short = (reasoning_gym_dataset(n=5, seed=3, template=t) for t in ("reference", "short"))
    assert reference.remove_columns("prompt").to_dict() == short.remove_columns("prompt").to_dict()
    assert [p[0]["content"] for p in short["prompt"]] == [PROMPT_TEMPLATES["short"][0]["content"]] * 5
    assert [p[1] for p in short["prompt"]] == [p[1] for p in reference["prompt"]]  # the question, verbatim
    assert "\\boxed{}" in PROMPT_TEMPLATES["short"][0]["content"]  # what the answer checker looks for first
    with pytest.raises(ValueError, match="unknown prompt template 'long'; choose one of reference, short"):
        reasoning_gym_dataset(n=1, template="long")


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_train_and_eval_are_disjoint_for_any_seeds(train_seed, eval_seed):
    train = reasoning_gym_dataset(n=60, seed=train_seed)
    held_out = reasoning_gym_dataset(n=15, seed=eval_seed, split="eval")
    assert not set(train["question"]) & set(held_out["question"])
    assert all(split_of(q) == "eval" for q in held_out["question"])


def test_reasoning_gym_dataset_is_reproducible_and_scoreable():
    rows = reasoning_gym_dataset(n=20, seed=5)
    assert rows.to_dict() == reasoning_gym_dataset(n=20, seed=5).to_dict()
    assert len(set(rows["question"]) & set(reasoning_gym_dataset(n=20, seed=6)["question"])) < 10
    assert set(rows.column_names) == {"prompt", "question", "answer", "task", "metadata"}
    assert set(rows["task"]) == {DEFAULT_TASK}
    assert all(json.loads(m)["source_dataset"] == DEFAULT_TASK for m in rows["metadata"])
    assert reasoning_gym_reward(rows["answer"], **rows.to_dict()) == [1.0] * 20
    assert math_accuracy_reward([f"\\boxed{{{a}}}" for a in rows["answer"]], rows["answer"]) == [1.0] * 20


def test_default_task_is_two_one_digit_terms():
    for question in reasoning_gym_dataset(n=50)["question"]:
        left, operator, right = question.removeprefix("Calculate ").removesuffix(".").split()
        assert operator in "+-" and 0 <= int(left) <= 10 and 0 <= int(right) <= 10  # reasoning-gym: 1 digit is 0..10


def test_other_tasks_and_errors():
    rows = reasoning_gym_dataset("chain_sum", n=4, split="eval", min_terms=2, max_terms=2)
    assert reasoning_gym_reward(rows["answer"], **rows.to_dict()) == [1.0] * 4
    with pytest.raises(ValueError, match="split"):
        reasoning_gym_dataset(n=1, split="validation")
    with pytest.raises(ValueError, match="distinct"):
        reasoning_gym_dataset(n=500, split="eval", distinct=True)


@pytest.mark.skipif(not SHARED_BENCHMARKS.is_dir(), reason="needs ../shared/data/benchmarks")
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_shared_benchmarks(name, monkeypatch):
    rows = load_benchmark(name, SHARED_BENCHMARKS)
    assert len(rows) == EXPECTED_ROWS[name]
    assert all(isinstance(a, str) and a for a in rows["answer"])
    assert not any(HARNESS_INSTRUCTION in p for p in rows["problem"])
    assert rows[0]["prompt"] == build_prompt(rows[0]["problem"])
    monkeypatch.setenv("DENSER_DATA_DIR", str(SHARED_BENCHMARKS))
    assert load_benchmark(name)["answer"] == rows["answer"]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_benchmark_fixture_and_errors(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / BENCHMARKS["amc23"].file,
                 [{"problem": "What is $3/4$ as a decimal?\n" + HARNESS_INSTRUCTION, "answer": 0.75},
                  {"problem": "Count to $27$.", "answer": 27.0}])
    rows = load_benchmark("amc23", tmp_path)
    assert rows["answer"] == ["0.75", "27"]
    assert rows["problem"] == ["What is $3/4$ as a decimal?", "Count to $27$."]
    with pytest.raises(ValueError, match="math500"):
        load_benchmark("gsm8k", tmp_path)
    with pytest.raises(FileNotFoundError, match="aime24.jsonl"):
        load_benchmark("aime24", tmp_path)
    monkeypatch.delenv("DENSER_DATA_DIR", raising=False)
    monkeypatch.setattr("denser.data.load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(OSError, match="DENSER_DATA_DIR"):
        load_benchmark("aime25")


def test_dapo_math_fixture(tmp_path, monkeypatch):
    rows = [{"problem": f"Compute ${i} \\cdot 2$.", "answer": str(2 * i)} for i in range(5)]
    _write_jsonl(tmp_path / DAPO_MATH.file, rows)
    monkeypatch.setenv("DENSER_DATA_DIR", str(tmp_path))
    dapo = load_dapo_math(n=3)
    assert dapo["answer"] == ["0", "2", "4"]
    assert dapo[2]["prompt"][1]["content"] == "Compute $2 \\cdot 2$."


def test_hub_path_uses_the_source_columns(monkeypatch):
    from datasets import Dataset
    calls = []

    def fake_load_dataset(hub_id, config, split):
        calls.append((hub_id, config, split))
        return Dataset.from_dict({"prompt": ["Find $x$.", "Find $y$.", "Find $z$."], "solution": ["1", "2", "3"]})

    monkeypatch.delenv("DENSER_DATA_DIR", raising=False)
    monkeypatch.setattr("denser.data.load_dataset", fake_load_dataset)
    dapo = load_dapo_math(n=2)
    assert calls == [(DAPO_MATH.hub_id, "en", "train")]
    assert dapo["problem"] == ["Find $x$.", "Find $y$."] and dapo["answer"] == ["1", "2"]
