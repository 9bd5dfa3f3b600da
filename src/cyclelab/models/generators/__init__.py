"""Generators, registered by the name ``model.generator`` uses. Each maps an N x 3 x H x W
image in [-1, 1] to one of the same shape and range."""

from __future__ import annotations

from torch import nn

from cyclelab.models.generators.attention import AttentionGenerator
from cyclelab.models.generators.pixelshuffle import PixelShuffleGenerator
from cyclelab.models.generators.resnet import ResnetGenerator
from cyclelab.models.generators.unet import UnetGenerator
from cyclelab.models.sizes import unet_depth


def _resnet(cfg, image_size: int | None) -> nn.Module:
    return ResnetGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks,
                           n_downsampling=cfg.n_downsampling, norm=cfg.norm,
                           dropout=cfg.dropout, upsample=cfg.upsample)


def _unet(cfg, image_size: int | None) -> nn.Module:
    if image_size is None:
        raise ValueError("the U-Net's depth follows the image size: pass image_size")
    return UnetGenerator(unet_depth(image_size), ngf=cfg.ngf, norm=cfg.norm,
                         dropout=cfg.dropout, upsample=cfg.upsample)


def _pixelshuffle(cfg, image_size: int | None) -> nn.Module:
    return PixelShuffleGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks,
                                 n_downsampling=cfg.n_downsampling, norm=cfg.norm,
                                 upsample=cfg.upsample)


def _attention(cfg, image_size: int | None) -> nn.Module:
    return AttentionGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks,
                              n_downsampling=cfg.n_downsampling, norm=cfg.norm,
                              dropout=cfg.dropout, upsample=cfg.upsample)


GENERATORS = {"resnet": _resnet, "unet": _unet, "pixelshuffle": _pixelshuffle,
              "attention": _attention}

__all__ = ["GENERATORS", "AttentionGenerator", "PixelShuffleGenerator", "ResnetGenerator",
           "UnetGenerator"]
