"""The U-Net generator of pix2pix/CycleGAN's official code (``unet_128``: 7 down-samplings,
``unet_256``: 8): stride-2 4x4 convolutions down to a 1x1 bottleneck, transposed convolutions
back up, each level concatenated with its mirror (skip connections). The depth follows the
image size (the number of times it halves, at most 8), so 128 px builds ``unet_128`` and
256 px ``unet_256``. ``model.dropout`` is the official ``use_dropout`` (0.5) of the three
innermost 8*ngf levels.

Reference size: ngf 64, instance norm: 54,409,603 parameters at 256 px (unet_256) and
41,825,667 at 128 px (unet_128); with batch norm (pix2pix) 54,413,955 and 41,828,995."""

from __future__ import annotations

import torch
from torch import nn

from cyclelab.models.layers import ImageGenerator, norm_layer, upsample, uses_bias


class UnetBlock(nn.Module):
    """One level: down-convolution, the inner levels, up-convolution, and the skip connection
    (the outermost level has none and ends in tanh)."""

    def __init__(self, outer: int, inner: int, in_channels: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 norm: str = "instance", dropout: float = 0.0,
                 up_kind: str = "transpose") -> None:
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        in_channels = outer if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = [nn.ReLU(True), *upsample(inner * 2, outer, up_kind, kernel=4), nn.Tanh()]
            layers = [down_conv, submodule, *up]
        elif submodule is None:  # innermost: 1x1 at a power-of-two size, so no norm there
            up = [nn.ReLU(True), *upsample(inner, outer, up_kind, bias=bias, kernel=4),
                  make_norm(outer)]
            layers = [nn.LeakyReLU(0.2, True), down_conv, *up]
        else:
            up = [nn.ReLU(True), *upsample(inner * 2, outer, up_kind, bias=bias, kernel=4),
                  make_norm(outer)]
            if dropout > 0:
                up.append(nn.Dropout(dropout))
            layers = [nn.LeakyReLU(0.2, True), down_conv, make_norm(inner), submodule, *up]
        self.model = nn.Sequential(*layers)

    def forward(self, x):  # noqa: D102
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(ImageGenerator):
    """U-Net with ``depth`` down-samplings; input and output in [-1, 1]."""

    def __init__(self, depth: int, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 norm: str = "instance", dropout: float = 0.0,
                 upsample: str = "transpose") -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"a U-Net needs depth >= 2, got {depth}")

        def channels(level: int) -> int:  # the outer channels of a level, outermost = 0
            return ngf * min(2 ** (level - 1), 8)

        # Built inside out, as the official code: innermost, 8*ngf levels (with dropout), 4*ngf,
        # 2*ngf, ngf, then the outermost level that maps to the image.
        block = UnetBlock(channels(depth - 1), channels(depth), norm=norm, up_kind=upsample)
        for level in range(depth - 2, 0, -1):
            block = UnetBlock(channels(level), channels(level + 1), submodule=block, norm=norm,
                              dropout=dropout if level >= 4 else 0.0, up_kind=upsample)
        self.model = UnetBlock(out_channels, ngf, in_channels=in_channels, submodule=block,
                               outermost=True, norm=norm, up_kind=upsample)
