"""The image pool of Shrivastava et al. as used by CycleGAN."""

from __future__ import annotations

import torch

from cyclelab.training.pool import ImagePool


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
