import torch
from hypothesis import given, settings, strategies as st

from denser.align import windowed_similarity
from denser.reference import loop_window_max as naive_window_max
from strategies import batches


@settings(max_examples=60, deadline=None)
@given(batches(), st.integers(0, 2**20), st.integers(1, 5), st.sampled_from([64, 2**12, 2**27]))
def test_banded_similarity_equals_loop_twin(batch, pair_seed, tile_size, chunk_bytes):
    hidden, mask, w = batch["hidden"], batch["mask"], batch["window_size"]
    rows = hidden.shape[0]
    generator = torch.Generator().manual_seed(pair_seed)
    query = torch.randint(rows, (6,), generator=generator)
    reference = torch.randint(rows, (6,), generator=generator)
    fast = windowed_similarity(hidden, mask, query, reference, w, tile_size=tile_size, chunk_bytes=chunk_bytes)
    for n, (q, r) in enumerate(zip(query.tolist(), reference.tolist())):
        slow = naive_window_max(hidden[q], mask[q], hidden[r], mask[r], w)
        torch.testing.assert_close(fast[n].double(), slow, atol=1e-5, rtol=0)


def test_similarity_is_in_unit_interval_and_zero_off_mask():
    hidden = torch.randn(4, 9, 3)
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[2, 4:] = 0
    sim = windowed_similarity(hidden, mask, torch.tensor([2, 0]), torch.tensor([0, 2]), window_size=2)
    assert ((sim >= 0) & (sim <= 1 + 1e-6)).all()
    assert (sim[0, 4:] == 0).all()


def test_memory_is_banded_not_quadratic():
    # 4096 tokens: a T x T float matrix per pair would be 64 MiB; the banded result is N x T.
    hidden = torch.randn(2, 4096, 8)
    mask = torch.ones(2, 4096)
    sim = windowed_similarity(hidden, mask, torch.tensor([0]), torch.tensor([1]), window_size=3, chunk_bytes=2**16)
    assert sim.shape == (1, 4096)
