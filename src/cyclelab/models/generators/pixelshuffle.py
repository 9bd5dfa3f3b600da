"""Seed 001's generator: the ResNet generator's encoder (c7s1-64, two stride-2 3x3
convolutions to 256 channels), residual blocks that add their input and then apply ReLU (8 in
its first version, 9 later), and a decoder whose two blocks are a 3x3 transposed convolution
doubling the channels, a pixel shuffle (x2 in space, /4 in channels), instance norm and ReLU;
it ends in a 7x7 transposed convolution mirroring the first one, with tanh.

Reference size: ngf 64, 9 blocks: 12,484,675 parameters; 8 blocks: 11,304,515."""

from __future__ import annotations

from torch import nn

from cyclelab.models.generators.resnet import encoder_layers
from cyclelab.models.layers import ImageGenerator, ResnetBlock, norm_layer, upsample, uses_bias


class ReluResnetBlock(ResnetBlock):
    """A residual block followed by ReLU on the sum, as seed 001 lists it."""

    def forward(self, x):  # noqa: D102
        return nn.functional.relu(x + self.body(x))


def pixel_shuffle_up(channels: int, norm: str, up: str = "transpose") -> list[nn.Module]:
    """Transposed 3x3 convolution to 2x the channels, pixel shuffle to half the input's
    channels at twice the size, norm, ReLU. ``up="resize_conv"`` (``model.upsample``) replaces
    the convolution and the shuffle with a resize and a 3x3 convolution."""
    make_norm, bias = norm_layer(norm), uses_bias(norm)
    if up == "resize_conv":
        return [*upsample(channels, channels // 2, up, bias=bias), make_norm(channels // 2),
                nn.ReLU(True)]
    return [nn.ConvTranspose2d(channels, channels * 2, 3, padding=1, bias=bias),
            nn.PixelShuffle(2), make_norm(channels // 2), nn.ReLU(True)]


class PixelShuffleGenerator(ImageGenerator):
    """Seed 001's ResNet generator with a pixel-shuffle decoder; images in [-1, 1]."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, n_downsampling: int = 2, norm: str = "instance",
                 upsample: str = "transpose") -> None:
        super().__init__()
        layers, channels = encoder_layers(in_channels, ngf, n_downsampling, norm)
        layers += [ReluResnetBlock(channels, norm) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += pixel_shuffle_up(channels, norm, upsample)
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, out_channels, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)
