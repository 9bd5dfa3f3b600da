"""Building blocks shared by the generators, discriminators and the autoencoder."""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    # Instance norm without affine parameters, as in the CycleGAN paper's code.
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "none": lambda channels: nn.Identity(),
}


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """The normalisation layer factory registered as ``name`` (``model.norm``)."""
    return NORM_LAYERS[name]


def uses_bias(norm: str) -> bool:
    """Convolutions before an affine-free norm need their own bias (the paper's code)."""
    return norm != "batch"


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection (Johnson et al.)."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
        )

    def forward(self, x):  # noqa: D102
        return x + self.body(x)
