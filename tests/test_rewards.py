"Rewards on tricky answers, in threads and worker processes, never raising and bounded in time."
import json
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings, strategies as st

from denser.rewards import (answers_match, extract_answer, format_reward, math_accuracy_reward,
                            reasoning_gym_reward)

TRICKY = [  # (completion, reference, reward)
    (r"\boxed{0.5}", r"\frac{1}{2}", 1.0),
    (r"\boxed{\frac{1}{2}}", "0.5", 1.0),
    (r"\boxed{\dfrac{3}{6}}", r"\frac12", 1.0),
    (r"\boxed{0.33}", r"\frac{1}{3}", 0.0),
    (r"\boxed{2\sqrt{2}}", r"\sqrt{8}", 1.0),
    (r"\boxed{\sqrt{2}}", r"\sqrt{3}", 0.0),
    (r"\boxed{[1, 2)}", "[1,2)", 1.0),
    (r"\boxed{(1, 2)}", "[1,2)", 0.0),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"(3, \frac{\pi}{2})", 1.0),
    (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt3}{2}", 1.0),
    ("The answer is 42", "42", 1.0),
    ("no number at all", "42", 0.0),
    (r"\boxed{}", "0", 0.0),
    (r"\boxed{12", "12", 1.0),  # unclosed box: the last number is the fallback
    (r"\boxed{1,000,000}", "1000000", 1.0),
    ("1" + "0" * 3000, "1" + "0" * 3000, 1.0),
    ("1" + "0" * 3000, "1" + "0" * 2999, 0.0),
    (r"\boxed{10^{3000}}", "1" + "0" * 3000, 1.0),
]


@pytest.mark.parametrize("completion,reference,reward", TRICKY)
def test_tricky_answers(completion, reference, reward):
    assert math_accuracy_reward([completion], [reference]) == [reward]


def test_conversational_completions_and_extra_columns():
    completions = [[{"role": "assistant", "content": r"<think>2+5</think> \boxed{7}"}],
                   [{"role": "assistant", "content": "8"}]]
    assert math_accuracy_reward(completions, ["7", "7"], problem=["p", "p"], prompt=[[], []]) == [1.0, 0.0]


def test_huge_and_slow_answers_are_bounded():
    start = time.monotonic()
    assert not answers_match(r"9^{9^{9^{9}}}", "7", timeout=1.0)
    assert math_accuracy_reward([r"\boxed{9^{9^{9^{9}}}}", "7"], ["7", "7"]) == [0.0, 1.0]
    assert time.monotonic() - start < 20
    assert answers_match(r"\frac{7}{1}", "7")  # the verifier recovered


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.none(), st.integers(), st.lists(st.dictionaries(st.text(), st.text()))),
                min_size=1, max_size=4),
       st.one_of(st.text(), st.none(), st.integers(), st.floats()))
def test_never_raises(completions, reference):
    rewards = math_accuracy_reward(completions, [reference] * len(completions))
    assert len(rewards) == len(completions) and set(rewards) <= {0.0, 1.0}


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**30, 10**30), st.integers(-10**30, 10**30),
       st.sampled_from(["{}", "The answer is {}.", r"\boxed{{{}}}", "<think>1+1</think> \\boxed{{{}}}"]))
def test_integers(predicted, gold, template):
    assert math_accuracy_reward([template.format(predicted)], [str(gold)]) == [float(predicted == gold)]


balanced = st.recursive(st.text(alphabet=st.characters(blacklist_characters="{}\\"), min_size=1),
                        lambda inner: st.builds(lambda a, b: f"{a}{{{b}}}", inner, inner), max_leaves=5)


@settings(max_examples=100, deadline=None)
@given(st.text(), balanced)
def test_last_box_with_nested_braces(prefix, content):
    text = prefix.replace("\\", "") + r" \boxed{wrong} then \boxed{" + content + "}"
    assert extract_answer(text) == content.strip()


def test_threads():
    golds = [str(i / 4) for i in range(40)]
    completions = [rf"\boxed{{\frac{{{i}}}{{4}}}}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        rewards = list(pool.map(lambda pair: math_accuracy_reward([pair[0]], [pair[1]])[0], zip(completions, golds)))
    assert rewards == [1.0] * 40


def _score(pair):
    return math_accuracy_reward([pair[0]], [pair[1]])[0]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes(method):
    math_accuracy_reward([r"\boxed{\frac{1}{2}}"], ["0.5"])  # parent's verifier is running before the fork
    pairs = [(r"\boxed{\frac{1}{2}}", "0.5"), (r"\boxed{\sqrt{4}}", "2"), (r"\boxed{\pi}", "3")]
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map(_score, pairs) == [1.0, 1.0, 0.0]
    assert math_accuracy_reward([r"\boxed{\sqrt{4}}"], ["2"]) == [1.0]


def test_reasoning_gym_reward_scores_with_the_task():
    import reasoning_gym
    items = list(reasoning_gym.create_dataset("basic_arithmetic", seed=3, size=4, max_terms=3, max_digits=2))
    columns = dict(answer=[i["answer"] for i in items], task=["basic_arithmetic"] * 4,
                   metadata=[json.dumps(i["metadata"]) for i in items], question=[i["question"] for i in items])
    right = [f"<think>...</think> \\boxed{{{i['answer']}}}" for i in items]
    assert reasoning_gym_reward(right, **columns) == [1.0] * 4
    assert reasoning_gym_reward(["no idea"] * 4, **columns) == [0.0] * 4
    assert reasoning_gym_reward([None] * 4, **columns) == [0.0] * 4


def test_format_reward():
    assert format_reward(["<think>\nx\n</think>\n\\boxed{1}", "\\boxed{1}", "<think>x</think> 1", None]) == \
        [1.0, 0.0, 0.0, 0.0]
