"Properties of the multiple-comparison adjustment (denser.stats.holm) against a loop twin."
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from denser.stats import holm

p_values = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=12)


def holm_loop(p):
    "Loop twin: step down through the sorted p-values, keeping the running maximum."
    order = sorted(range(len(p)), key=lambda i: (p[i], i))
    adjusted, running = [0.0] * len(p), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


@settings(max_examples=200, deadline=None)
@given(p_values)
def test_holm_matches_its_loop_twin(p):
    np.testing.assert_allclose(holm(p), holm_loop(p), rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(p_values)
def test_holm_is_between_the_raw_p_and_bonferroni_and_keeps_the_order(p):
    adjusted, raw = holm(p), np.asarray(p)
    assert (adjusted >= raw - 1e-12).all() and (adjusted <= np.minimum(1.0, len(p) * raw) + 1e-12).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(adjusted[order]) >= -1e-12).all()  # a smaller raw p never gets a larger adjusted one


def test_holm_rejects_what_is_not_a_p_value():
    import pytest
    for bad in ([1.5], [-0.1], [[0.1, 0.2]], [float("nan")]):
        with pytest.raises(ValueError, match="p-values in"):
            holm(bad)
