"""Hypothesis strategies for DenseR batches: small shapes, mixed classes, padded and holed masks."""
import torch
from hypothesis import strategies as st


@st.composite
def batches(draw, holes=True):
    "A dict with hidden (B, T, D), advantages (B,), mask (B, T), num_generations and window_size; empty and one-token rows included."
    num_generations = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 2))
    batch, length, dim = num_generations * groups, draw(st.integers(1, 7)), draw(st.integers(1, 4))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    hidden = torch.randn(batch, length, dim, generator=generator)
    advantages = torch.tensor(draw(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), min_size=batch, max_size=batch)))
    lengths = draw(st.lists(st.integers(0, length), min_size=batch, max_size=batch))
    mask = (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).long()
    if holes and draw(st.booleans()):
        mask = mask * (torch.rand(batch, length, generator=generator) > 0.3).long()
    if draw(st.booleans()):  # as in a real batch, the state predicting the first token is the prompt's, shared by the group
        hidden[:, 0] = hidden[::num_generations, 0].repeat_interleave(num_generations, 0)
    return dict(hidden=hidden, advantages=advantages, mask=mask, num_generations=num_generations,
                window_size=draw(st.integers(0, 3)))
