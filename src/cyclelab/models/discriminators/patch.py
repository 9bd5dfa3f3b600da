"""Convolutional discriminators of the official CycleGAN code (``patch``, ``pixel``) and seed
003's ``random_crop`` (a PatchGAN that judges one random crop of each image) and ``plain`` (its
"vanilla" discriminator: one real/fake output per image).

Reference sizes (ndf 64, 3 channels): ``patch`` with ``n_layers_d: 3`` has 2,764,737 parameters
and a 70x70 receptive field; ``pixel`` has 8,705 (1x1 field); ``random_crop`` at ``d_crop: 9``
is a one-layer PatchGAN (3 convolutions, seed 003) with 136,385 and a 16x16 field, clipped to
the 9x9 crop."""

from __future__ import annotations

import torch
from torch import nn

from cyclelab.models.layers import norm_layer, uses_bias
from cyclelab.models.sizes import crop_layers


def leaky_features(body: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every LeakyReLU of ``body``: the intermediate activations that a
    feature-matching loss compares."""
    features = []
    for layer in body:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            features.append(x)
    return features


def conv_stack(in_channels: int, ndf: int, n_layers: int, norm: str,
               last_stride: int) -> tuple[list[nn.Module], int]:
    """The PatchGAN trunk: a 4x4 stride-2 convolution with LeakyReLU, then ``n_layers`` 4x4
    convolutions (channels doubling up to 8 * ndf) with norm and LeakyReLU, stride 2 except
    the last (``last_stride``); also returns the last channel multiplier."""
    make_norm, bias = norm_layer(norm), uses_bias(norm)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                               nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        stride = 2 if n < n_layers else last_stride
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                   make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    return layers, mult


class PatchDiscriminator(nn.Module):
    """The PatchGAN of pix2pix/CycleGAN: with ``n_layers=3`` each output sees a 70x70 patch.

    Outputs a map of real/fake logits (no sigmoid: the GAN loss decides)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        # the last feature layer keeps resolution
        layers, mult = conv_stack(in_channels, ndf, n_layers, norm, last_stride=1)
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, img_m11):  # noqa: D102
        return self.model(img_m11)

    def features(self, img_m11) -> list[torch.Tensor]:
        """Activations after each LeakyReLU (feature matching)."""
        return leaky_features(self.model, img_m11)


class PixelDiscriminator(nn.Module):
    """The 1x1 PixelGAN of the official code: judges each pixel's colour alone."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, img_m11):  # noqa: D102
        return self.model(img_m11)

    def features(self, img_m11) -> list[torch.Tensor]:
        """Activations after each LeakyReLU (feature matching)."""
        return leaky_features(self.model, img_m11)


class RandomCropDiscriminator(nn.Module):
    """Seed 003: a PatchGAN that sees one random ``crop`` x ``crop`` window of each image
    (a fresh window per image and per call), which stabilised its discriminator losses."""

    def __init__(self, crop: int, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        self.crop = crop
        self.patch = PatchDiscriminator(in_channels, ndf, crop_layers(crop, n_layers), norm)

    def random_crop(self, img_m11: torch.Tensor) -> torch.Tensor:
        """One random ``crop``-sized window per image (torch's RNG: seeded runs repeat)."""
        n, _, h, w = img_m11.shape
        if h == self.crop and w == self.crop:
            return img_m11
        top = torch.randint(0, h - self.crop + 1, (n,)).tolist()
        left = torch.randint(0, w - self.crop + 1, (n,)).tolist()
        return torch.stack([img[:, t:t + self.crop, s:s + self.crop]
                            for img, t, s in zip(img_m11, top, left, strict=True)])

    def forward(self, img_m11):  # noqa: D102
        return self.patch(self.random_crop(img_m11))

    def features(self, img_m11) -> list[torch.Tensor]:
        """Activations of the PatchGAN on a random crop (feature matching). Each call draws
        new windows, so features of a real and a fake image come from different places."""
        return self.patch.features(self.random_crop(img_m11))


class PlainDiscriminator(nn.Module):
    """Seed 003's "vanilla" discriminator: ``n_layers + 1`` stride-2 4x4 convolutions (norm and
    LeakyReLU after all but the first's norm), then an average pool to 4x4 and one linear layer:
    a single logit per image (N x 1 x 1 x 1), where a PatchGAN gives a map."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        layers, mult = conv_stack(in_channels, ndf, n_layers, norm, last_stride=2)
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                  nn.Linear(ndf * mult * 16, 1))

    def forward(self, img_m11):  # noqa: D102
        return self.head(self.body(img_m11)).view(-1, 1, 1, 1)

    def features(self, img_m11) -> list[torch.Tensor]:
        """Activations after each LeakyReLU (feature matching)."""
        return leaky_features(self.body, img_m11)
