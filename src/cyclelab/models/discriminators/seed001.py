"""Seed 001's discriminator: kernel-2 stride-2 convolution blocks (instance norm, LeakyReLU
0.2) from 3 to 64, 128, 256 and 512 channels, one more 512-channel convolution, then a
convolution down to one channel; a 256-px image gives a 16x16 map. The report follows the
Keras CycleGAN tutorial, whose two last convolutions are 4x4 'same': so are these.

``n_layers_d: 3`` gives the report's four stride-2 blocks (``n_layers_d + 1``). Reference size
(ndf 64): 4,892,865 parameters, 112x112 receptive field."""

from __future__ import annotations

import torch
from torch import nn

from cyclelab.models.discriminators.patch import leaky_features
from cyclelab.models.layers import norm_layer, uses_bias


class Seed001Discriminator(nn.Module):
    """Stride-2 2x2 blocks halving the image ``n_layers + 1`` times, then two 4x4 'same'
    convolutions."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = []
        channels = in_channels
        for n in range(n_layers + 1):
            out = ndf * min(2**n, 8)
            layers += [nn.Conv2d(channels, out, 2, stride=2, bias=bias), make_norm(out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        # Keras 'same' for a 4x4 kernel: 1 px of zeros before, 2 after.
        layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(channels, channels, 4, bias=bias),
                   make_norm(channels), nn.LeakyReLU(0.2, True),
                   nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(channels, 1, 4)]
        self.model = nn.Sequential(*layers)

    def forward(self, img_m11):  # noqa: D102
        return self.model(img_m11)

    def features(self, img_m11) -> list[torch.Tensor]:
        """Activations after each LeakyReLU (feature matching)."""
        return leaky_features(self.model, img_m11)
