"""Discriminators, registered by the name ``model.discriminator`` uses."""

from __future__ import annotations

from torch import nn

from cyclelab.models.layers import norm_layer, uses_bias


class PatchDiscriminator(nn.Module):
    """The PatchGAN of pix2pix/CycleGAN: with ``n_layers=3`` each output sees a 70x70 patch.

    Outputs a map of real/fake logits (no sigmoid: the GAN loss decides)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps resolution
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, img_m11):  # noqa: D102
        return self.model(img_m11)


def _patch(cfg) -> nn.Module:
    return PatchDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)


DISCRIMINATORS = {"patch": _patch}
