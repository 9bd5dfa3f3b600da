"""What a resumed run needs beyond the weights: the image pool on the device it is queried on,
and every RNG stream the run draws from (CUDA's included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cyclelab.training import checkpoint
from cyclelab.training.pool import ImagePool, Seed001Cache

REPO = Path(__file__).resolve().parents[1]


def _filled(pool, n: int = 6):
    for v in range(n):
        pool.query(torch.full((2, 3, 4, 4), float(v)))
    return pool


@pytest.mark.parametrize("make", [lambda: ImagePool(4, seed=1),
                                  lambda: Seed001Cache(4, block=2, every=1, seed=1)],
                         ids=["paper", "seed001"])
def test_a_pool_restored_from_a_cpu_checkpoint_follows_the_device_it_is_queried_on(make):
    """A checkpoint holds the pool's images on the CPU; a resumed CUDA run queries with CUDA
    tensors. The meta device stands in for CUDA here: a query mixing devices fails there too."""
    state = _filled(make()).state_dict()
    assert all(t.device.type == "cpu" for t in state["images"])
    pool = make()
    pool.load_state_dict(state)
    out = None
    for _ in range(4):  # the paper pool returns a stored image about every other query
        out = pool.query(torch.zeros(2, 3, 4, 4, device="meta"))
        assert out.device.type == "meta" and out.shape == (2, 3, 4, 4)
    assert {t.device.type for t in pool.images} == {"meta"}


def test_a_pool_follows_the_dtype_of_its_queries():
    pool = _filled(ImagePool(4, seed=0))
    out = pool.query(torch.zeros(2, 3, 4, 4, dtype=torch.float64))
    assert out.dtype == torch.float64 and {t.dtype for t in pool.images} == {torch.float64}


class _FakeCuda:
    """torch.cuda as a run on two GPUs sees it (the RNG calls only)."""

    def __init__(self) -> None:
        self.states = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
        self.restored = None

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.states))
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(self.states))
        monkeypatch.setattr(torch.cuda, "set_rng_state_all",
                            lambda states: setattr(self, "restored", list(states)))


def test_the_checkpointed_rng_state_carries_every_cuda_device_and_restores_it(monkeypatch):
    cuda = _FakeCuda()
    cuda.install(monkeypatch)
    state = checkpoint.rng_state()
    assert [int(t) for t in state["cuda"]] == [1, 2]
    checkpoint.set_rng_state(state)
    assert [int(t) for t in cuda.restored] == [1, 2]


def test_a_cpu_run_saves_no_cuda_state_and_resumes_a_cuda_one_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = checkpoint.rng_state()
    assert "cuda" not in state
    checkpoint.set_rng_state({**state, "cuda": [torch.tensor([1], dtype=torch.uint8)]})


def test_the_checkpoint_round_trip_restores_numpy_and_torch_streams(tmp_path):
    import numpy as np

    state = checkpoint.rng_state()
    checkpoint.save(tmp_path / "c.pt", {"rng": state})
    want = (np.random.rand(), torch.rand(1).item())
    checkpoint.set_rng_state(checkpoint.load_state(tmp_path / "c.pt")["rng"])
    assert (np.random.rand(), torch.rand(1).item()) == want


def test_numpy_requirement_admits_only_versions_the_checkpoint_code_runs_on():
    """Checkpoints pickle NumPy's RNG state; the requirement names the major version tested."""
    text = (REPO / "pyproject.toml").read_text()
    spec = re.search(r'"numpy>=([0-9.]+)', text)
    assert spec and int(spec.group(1).split(".")[0]) >= 2
    assert "np._core" not in (REPO / "src/cyclelab/training/checkpoint.py").read_text()
