"""Networks, looked up by the names in ``params.yaml`` (``model.generator``,
``model.discriminator``)."""

from __future__ import annotations

from torch import nn

from cyclelab.models.discriminators import DISCRIMINATORS
from cyclelab.models.generators import GENERATORS
from cyclelab.models.init import init_weights
from cyclelab.models.layers import ImageGenerator


def leaky_generator(net: nn.Module) -> nn.Module:
    """``model.activation_g: leaky_relu``: every ReLU layer of ``net`` becomes a LeakyReLU of
    slope 0.2 (one rule for every generator family; no weights change)."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.LeakyReLU(0.2, inplace=child.inplace))
    return net


def reflect_padding(net: nn.Module) -> nn.Module:
    """``model.padding_d: reflect``: every padded convolution of ``net`` pads by reflection
    instead of zeros (the same weights; PyTorch's ``padding_mode``)."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and any(module.padding):
            module.padding_mode = "reflect"
    return net


def _generator(cfg, image_size: int | None) -> nn.Module:
    net = GENERATORS[cfg.generator](cfg, image_size)
    if cfg.input_skip:
        if not isinstance(net, ImageGenerator):  # a family added without the base
            raise ValueError(f"model.input_skip: generator {cfg.generator!r} is not an "
                             "ImageGenerator (docs/extending.md); set input_skip: false")
        net.skip_input()
    return leaky_generator(net) if cfg.activation_g == "leaky_relu" else net


def _discriminator(cfg) -> nn.Module:
    net = DISCRIMINATORS[cfg.discriminator](cfg)
    return reflect_padding(net) if cfg.padding_d == "reflect" else net


def build_generator(cfg, image_size: int | None = None) -> nn.Module:
    """A freshly initialised generator for ``cfg`` (a ``ModelConfig``); ``image_size`` sets
    the U-Net's depth (the other generators take any size their down-sampling divides)."""
    return init_weights(_generator(cfg, image_size), cfg.init, cfg.init_gain)


def build_discriminator(cfg) -> nn.Module:
    """A freshly initialised discriminator for ``cfg`` (a ``ModelConfig``)."""
    return init_weights(_discriminator(cfg), cfg.init, cfg.init_gain)


def count_parameters(net: nn.Module) -> int:
    """The number of trainable parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def network_summary(cfg, image_size: int) -> str:
    """One line for reports: both networks of ``cfg`` at ``image_size``, their parameter
    counts and the discriminator's receptive field (with the note when it covers the image).
    Built uninitialised on the meta device: no memory, no time."""
    import torch

    from cyclelab.models.receptive import field_note, receptive_field

    with torch.device("meta"):
        G, D = _generator(cfg, image_size), _discriminator(cfg)
    line = (f"generator {cfg.generator} ({count_parameters(G):,} parameters), discriminator "
            f"{cfg.discriminator} ({count_parameters(D):,} parameters, receptive field "
            f"{receptive_field(D)} px of {image_size} px)")
    note = field_note(cfg, image_size)
    return f"{line}; {note}" if note else line


__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator",
           "count_parameters", "init_weights", "leaky_generator", "network_summary",
           "reflect_padding"]
