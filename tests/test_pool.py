"""The image pool of Shrivastava et al. as used by CycleGAN."""

from __future__ import annotations

import pytest
import torch

from cyclelab.training.pool import ImagePool, Seed001Cache


def batch(value: float, n: int = 2) -> torch.Tensor:
    return torch.full((n, 3, 2, 2), value)


def test_size_zero_passes_through_detached():
    images = batch(1.0).requires_grad_()
    out = ImagePool(0).query(images)
    assert torch.equal(out, images) and not out.requires_grad


def test_fills_then_mixes_history():
    pool = ImagePool(4, seed=0)
    assert torch.equal(pool.query(batch(1.0)), batch(1.0))
    assert torch.equal(pool.query(batch(2.0)), batch(2.0))
    assert len(pool.images) == 4
    seen = torch.cat([pool.query(batch(float(v))) for v in range(3, 200)])
    values = seen[:, 0, 0, 0]
    old = (values < 3).sum().item()
    # About half of the queries return a stored (older) image.
    assert 0.35 < (values != torch.arange(3, 200).repeat_interleave(2)).float().mean() < 0.65
    assert old > 0
    assert len(pool.images) == 4


def test_state_round_trip_gives_same_future():
    a = ImagePool(3, seed=5)
    for v in range(5):
        a.query(batch(float(v)))
    b = ImagePool(3, seed=99)
    b.load_state_dict(a.state_dict())
    for v in range(5, 30):
        assert torch.equal(a.query(batch(float(v))), b.query(batch(float(v))))


def test_seed001_cache_fills_then_replaces_a_contiguous_block():
    cache = Seed001Cache(size=6, block=2, every=100, seed=0)
    for v in range(3):
        assert torch.equal(cache.query(batch(float(v))), batch(float(v)))  # not a draw call
    assert [t[0, 0, 0, 0].item() for t in cache.images] == [0, 0, 1, 1, 2, 2]
    cache.query(batch(9.0))
    values = [t[0, 0, 0, 0].item() for t in cache.images]
    assert len(values) == 6 and values.count(9.0) == 2
    at = values.index(9.0)
    assert values[at + 1] == 9.0  # one contiguous block


@pytest.mark.parametrize("draw", ["contiguous", "random"])
def test_seed001_cache_draws_every_k_iterations(draw):
    cache = Seed001Cache(size=25, block=5, every=3, draw=draw, seed=1)
    drawn = []
    for i in range(30):
        out = cache.query(torch.arange(5.0).add(10 * i).view(5, 1, 1, 1))
        assert out.shape == (5, 1, 1, 1)
        stored = [t.item() for t in cache.images]
        if (i + 1) % 3:
            assert out.flatten().tolist() == [10.0 * i + k for k in range(5)]  # the new batch
            continue
        values = out.flatten().tolist()
        drawn += values
        runs = [stored[s:s + 5] for s in range(len(stored) - 4)]
        assert (values in runs) == (draw == "contiguous")
    assert min(drawn) < 200  # history, not only the newest batches


def test_seed001_cache_state_round_trip():
    a = Seed001Cache(size=8, block=2, every=2, seed=3)
    for v in range(7):
        a.query(batch(float(v)))
    b = Seed001Cache(size=8, block=2, every=2, seed=99)
    b.load_state_dict(a.state_dict())
    for v in range(7, 30):
        assert torch.equal(a.query(batch(float(v))), b.query(batch(float(v))))
