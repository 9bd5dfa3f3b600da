"""Receptive fields of the discriminators, computed from their layer lists, and the
``n_layers_d`` that keeps the PatchGAN paper's field-to-image ratio (70 px of 256)."""

from __future__ import annotations

import dataclasses
import math

from torch import nn

PAPER_RATIO = 70 / 256  # the 70x70 PatchGAN on 256-px images


def receptive_field(net: nn.Module) -> int:
    """The side, in input pixels, that one output cell of ``net``'s logit map sees.

    The convolutions on the way to the patch logits are taken in registration order (every
    discriminator here is a chain); each adds ``(kernel - 1) * dilation`` input steps of the
    current stride. A discriminator that judges a crop sees at most the crop."""
    field, jump = 1, 1
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            field += (module.kernel_size[0] - 1) * module.dilation[0] * jump
            jump *= module.stride[0]
    crop = getattr(net, "crop", None)
    return min(field, crop) if crop else field


def field_for(model_cfg, n_layers_d: int) -> int:
    """The receptive field of ``model_cfg``'s discriminator with ``n_layers_d`` layers."""
    from cyclelab.models.build import build_discriminator

    tiny = dataclasses.replace(model_cfg, n_layers_d=n_layers_d, ndf=1)
    return receptive_field(build_discriminator(tiny))


def paper_ratio_layers(model_cfg, image_size: int, max_layers: int = 6) -> int:
    """The ``n_layers_d`` whose receptive field is closest (in log scale) to 70/256 of
    ``image_size``."""
    target = math.log(PAPER_RATIO * image_size)
    return min(range(1, max_layers + 1),
               key=lambda n: abs(math.log(field_for(model_cfg, n)) - target))


def field_note(model_cfg, image_size: int) -> str | None:
    """One line when each cell of the discriminator sees the whole image (field >= size): it
    is then a global discriminator, not a PatchGAN; None otherwise."""
    if model_cfg.discriminator == "plain":
        return "discriminator 'plain': one output per image (judges the whole image)"
    field = field_for(model_cfg, model_cfg.n_layers_d)
    if field < image_size:
        return None
    better = paper_ratio_layers(model_cfg, image_size)
    return (f"discriminator {model_cfg.discriminator!r}: receptive field {field} px >= image "
            f"{image_size} px, so each output cell judges the whole image (a global "
            f"discriminator); n_layers_d={better} ({field_for(model_cfg, better)} px) keeps "
            f"the PatchGAN paper's ratio of 70/256")
