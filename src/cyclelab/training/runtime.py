"""Device choice, seeding and precision: the same for every stage that runs a network."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from cyclelab.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    """Where and how networks run: AMP and channels_last only on CUDA (the CPU path stays fp32)."""

    device: torch.device

    @property
    def cuda(self) -> bool:  # noqa: D102
        return self.device.type == "cuda"

    def autocast(self):
        """Mixed precision on CUDA, a no-op elsewhere."""
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move ``module`` to the device (channels_last on CUDA)."""
        module = module.to(self.device)
        if self.cuda:
            module = module.to(memory_format=torch.channels_last)
        return module

    def tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Move an image batch to the device (channels_last on CUDA)."""
        batch = batch.to(self.device, non_blocking=True)
        if self.cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; asking for an absent device is a ConfigError."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    elif name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got 'cuda' but no CUDA device is visible; use auto or cpu")
    elif name == "mps" and not has_mps:
        raise ConfigError("device: got 'mps' but MPS is not available; use auto or cpu")
    return torch.device(name)


def make_runtime(device: str = "auto") -> Runtime:
    """The :class:`Runtime` for ``params.yaml``'s ``device``."""
    return Runtime(pick_device(device))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU kernels are deterministic for our layers; asking torch
    for deterministic algorithms globally costs a 10 s warm-up on the CPU, measured)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
