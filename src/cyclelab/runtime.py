"""Device choice, seeding and precision: the same for every stage that runs a network."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from cyclelab.errors import ConfigError

PRECISION_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """Where and how networks run: ``precision`` fp32, or autocast to bf16/fp16 (``auto``
    resolves to fp32 on the CPU, bf16 on CUDA where supported, else fp16); channels_last on
    CUDA."""

    device: torch.device
    precision: str = "fp32"

    @property
    def cuda(self) -> bool:  # noqa: D102
        return self.device.type == "cuda"

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling (bf16 has fp32's range)."""
        return self.cuda and self.precision == "fp16"

    def grad_scaler(self) -> torch.amp.GradScaler:
        """The loss scaler of every training step (autoencoder and CycleGAN alike): on only
        where :attr:`needs_scaler`, elsewhere a pass-through."""
        return torch.amp.GradScaler("cuda", enabled=self.needs_scaler)

    def autocast(self):
        """Autocast to the run's reduced precision, a no-op for fp32."""
        if self.precision in PRECISION_DTYPES:
            return torch.autocast(self.device.type, dtype=PRECISION_DTYPES[self.precision])
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


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: fp32 on the CPU and MPS (measured no faster there), bf16 on CUDA where the
    GPU supports it, else fp16."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """The :class:`Runtime` for ``params.yaml``'s ``device`` and ``train.precision``."""
    torch_device = pick_device(device)
    if torch_device.type == "cuda":
        # Image sizes are fixed within a run: let cuDNN time its algorithms once per shape.
        torch.backends.cudnn.benchmark = True
    return Runtime(torch_device, resolve_precision(precision, torch_device))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU kernels are deterministic for our layers; asking torch
    for deterministic algorithms globally costs a 10 s warm-up on the CPU, measured)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
