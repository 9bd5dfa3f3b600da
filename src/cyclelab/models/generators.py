"""Generators, registered by the name ``model.generator`` uses."""

from __future__ import annotations

from torch import nn

from cyclelab.models.layers import ResnetBlock, norm_layer, uses_bias


class ResnetGenerator(nn.Module):
    """The ResNet generator of the CycleGAN paper: c7s1-ngf, down-sampling, residual blocks,
    up-sampling, c7s1-3 with tanh. Input and output in [-1, 1]."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, n_downsampling: int = 2, norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        channels = ngf
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [ResnetBlock(channels, norm) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       make_norm(channels // 2), nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, img_m11):  # noqa: D102
        return self.model(img_m11)


def _resnet(cfg) -> nn.Module:
    return ResnetGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks,
                           n_downsampling=cfg.n_downsampling, norm=cfg.norm)


GENERATORS = {"resnet": _resnet}
