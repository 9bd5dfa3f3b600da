"""Discriminators, registered by the name ``model.discriminator`` uses.

Every discriminator's ``forward(img_m11)`` returns a map of real/fake logits (N x 1 x h x w)
and ``features(img_m11)`` its intermediate activations (feature matching);
``DualHeadDiscriminator.forward_all`` adds the global head."""

from __future__ import annotations

from torch import nn

from cyclelab.models.discriminators.dual_head import DualHeadDiscriminator
from cyclelab.models.discriminators.patch import (
    PatchDiscriminator,
    PixelDiscriminator,
    PlainDiscriminator,
    RandomCropDiscriminator,
)
from cyclelab.models.discriminators.seed001 import Seed001Discriminator


def _patch(cfg) -> nn.Module:
    return PatchDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)


def _pixel(cfg) -> nn.Module:
    return PixelDiscriminator(ndf=cfg.ndf, norm=cfg.norm)


def _random_crop(cfg) -> nn.Module:
    return RandomCropDiscriminator(cfg.d_crop, ndf=cfg.ndf, n_layers=cfg.n_layers_d,
                                   norm=cfg.norm)


def _seed001(cfg) -> nn.Module:
    return Seed001Discriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)


def _plain(cfg) -> nn.Module:
    return PlainDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)


def _dual_head(cfg) -> nn.Module:
    return DualHeadDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)


DISCRIMINATORS = {"patch": _patch, "pixel": _pixel, "random_crop": _random_crop,
                  "seed001": _seed001, "dual_head": _dual_head, "plain": _plain}

__all__ = ["DISCRIMINATORS", "DualHeadDiscriminator", "PatchDiscriminator",
           "PixelDiscriminator", "PlainDiscriminator", "RandomCropDiscriminator",
           "Seed001Discriminator"]
