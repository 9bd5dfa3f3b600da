"""The ResNet generator of the CycleGAN paper (Johnson et al.'s architecture), as in the
official code: c7s1-ngf, ``n_downsampling`` stride-2 convolutions, ``n_blocks`` residual blocks
(the paper uses 6 at 128 px and 9 at 256 px; seeds 000 and 003 use 3 and 2), as many
transposed convolutions, c7s1-3 with tanh. ``model.dropout`` is the official ``use_dropout``
(0.5 there) inside each block.

Reference size: ngf 64, 9 blocks: 11,378,179 parameters; 3 blocks (seed 000): 4,297,219."""

from __future__ import annotations

from torch import nn

from cyclelab.models.layers import ImageGenerator, ResnetBlock, norm_layer, upsample, uses_bias


def encoder_layers(in_channels: int, ngf: int, n_downsampling: int,
                   norm: str) -> tuple[list[nn.Module], int]:
    """c7s1-ngf and the stride-2 down-sampling convolutions; also returns their channels."""
    make_norm, bias = norm_layer(norm), uses_bias(norm)
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                               make_norm(ngf), nn.ReLU(True)]
    channels = ngf
    for _ in range(n_downsampling):
        layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                   make_norm(channels * 2), nn.ReLU(True)]
        channels *= 2
    return layers, channels


def decoder_layers(channels: int, out_channels: int, n_upsampling: int,
                   norm: str, up: str = "transpose") -> list[nn.Module]:
    """Up-sampling steps halving the channels (stride-2 transposed convolutions, or resize and
    convolution: ``model.upsample``), then c7s1-3 with tanh."""
    make_norm, bias = norm_layer(norm), uses_bias(norm)
    layers: list[nn.Module] = []
    for _ in range(n_upsampling):
        layers += [*upsample(channels, channels // 2, up, bias=bias),
                   make_norm(channels // 2), nn.ReLU(True)]
        channels //= 2
    return [*layers, nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]


class ResnetGenerator(ImageGenerator):
    """The ResNet generator of the CycleGAN paper: c7s1-ngf, down-sampling, residual blocks,
    up-sampling, c7s1-3 with tanh. Input and output in [-1, 1]."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, n_downsampling: int = 2, norm: str = "instance",
                 dropout: float = 0.0, upsample: str = "transpose") -> None:
        super().__init__()
        layers, channels = encoder_layers(in_channels, ngf, n_downsampling, norm)
        layers += [ResnetBlock(channels, norm, dropout) for _ in range(n_blocks)]
        layers += decoder_layers(channels, out_channels, n_downsampling, norm, upsample)
        self.model = nn.Sequential(*layers)
