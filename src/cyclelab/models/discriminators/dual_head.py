"""Seed 004's discriminator: stride-2 convolutions doubling the channels from 64 to 512, each
with spectral norm, instance norm and LeakyReLU; then two heads on the last feature map, a
PatchGAN convolution (local, [N, 1, 16, 16] at 256 px) and average pool + linear (global,
[N, 1]). The trunk's activations feed the feature-matching loss of the generators.

``n_layers_d: 3`` gives the report's four convolutions (``n_layers_d + 1``). Reference size
(ndf 64): 2,761,666 parameters, 78x78 receptive field of the patch head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cyclelab.models.layers import norm_layer


class DualHeadDiscriminator(nn.Module):
    """Spectral-norm trunk with a patch head and a global head.

    ``forward`` returns the patch logits (every discriminator does); ``forward_all`` returns
    ``{"patch": N x 1 x h x w, "global_": N x 1, "features": [trunk activations]}``."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        blocks = []
        channels = in_channels
        for n in range(n_layers + 1):
            out = ndf * min(2**n, 8)
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, out, 4, 2, 1)),
                                        make_norm(out), nn.LeakyReLU(0.2, True)))
            channels = out
        self.trunk = nn.ModuleList(blocks)
        self.patch_head = spectral_norm(nn.Conv2d(channels, 1, 3, padding=1))
        self.global_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                         spectral_norm(nn.Linear(channels, 1)))

    def features(self, img_m11) -> list[torch.Tensor]:
        """The output of every trunk block (feature matching)."""
        features = []
        x = img_m11
        for block in self.trunk:
            x = block(x)
            features.append(x)
        return features

    def forward_all(self, img_m11) -> dict:
        """Both heads and the trunk features in one pass."""
        features = self.features(img_m11)
        return {"patch": self.patch_head(features[-1]),
                "global_": self.global_head(features[-1]), "features": features}

    def forward(self, img_m11):  # noqa: D102
        return self.patch_head(self.features(img_m11)[-1])
