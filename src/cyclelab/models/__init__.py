"""Networks, looked up by the names in ``params.yaml`` (``model.generator``,
``model.discriminator``)."""

from __future__ import annotations

from torch import nn

from cyclelab.models.discriminators import DISCRIMINATORS
from cyclelab.models.generators import GENERATORS
from cyclelab.models.init import init_weights


def build_generator(cfg, image_size: int | None = None) -> nn.Module:
    """A freshly initialised generator for ``cfg`` (a ``ModelConfig``); ``image_size`` sets
    the U-Net's depth (the other generators take any size their down-sampling divides)."""
    return init_weights(GENERATORS[cfg.generator](cfg, image_size), cfg.init, cfg.init_gain)


def build_discriminator(cfg) -> nn.Module:
    """A freshly initialised discriminator for ``cfg`` (a ``ModelConfig``)."""
    return init_weights(DISCRIMINATORS[cfg.discriminator](cfg), cfg.init, cfg.init_gain)


def count_parameters(net: nn.Module) -> int:
    """The number of trainable parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator",
           "count_parameters", "init_weights"]
