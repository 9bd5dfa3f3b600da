"""Networks, looked up by the names in ``params.yaml`` (``model.generator``,
``model.discriminator``)."""

from __future__ import annotations

from torch import nn

from cyclelab.models.discriminators import DISCRIMINATORS
from cyclelab.models.generators import GENERATORS
from cyclelab.models.init import init_weights


def build_generator(cfg) -> nn.Module:
    """A freshly initialised generator for ``cfg`` (a ``ModelConfig``)."""
    return init_weights(GENERATORS[cfg.generator](cfg), cfg.init, cfg.init_gain)


def build_discriminator(cfg) -> nn.Module:
    """A freshly initialised discriminator for ``cfg`` (a ``ModelConfig``)."""
    return init_weights(DISCRIMINATORS[cfg.discriminator](cfg), cfg.init, cfg.init_gain)


__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator",
           "init_weights"]
