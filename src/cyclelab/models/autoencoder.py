"""The autoencoder of seeds/000: encoder -> latent -> decoder -> ResNet generator, trained with
MSE. Its generator's weights initialise a CycleGAN generator (``variants.<name>.init: ae``)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

_BOTTOM = 4  # spatial side of the encoder's last feature map


class Encoder(nn.Module):
    """GELU convolutions halving the resolution down to 4x4, then a linear map to the latent.

    Batch norm after each convolution: without it this stack sat at the mean image for 10
    epochs at every learning rate tried (seeds/000 needed 500 epochs at 1e-6)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int) -> None:
        super().__init__()
        n_down = max(1, int(math.log2(max(image_size, 8) / _BOTTOM)))
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.GELU()]
        ch = channels
        for i in range(n_down):
            out = min(channels * 2 ** (i + 1), channels * 4)
            layers += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.BatchNorm2d(out),
                       nn.GELU(), nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out),
                       nn.GELU()]
            ch = out
        layers += [nn.AdaptiveAvgPool2d(_BOTTOM), nn.Flatten(),
                   nn.Linear(ch * _BOTTOM * _BOTTOM, latent_dim)]
        self.net = nn.Sequential(*layers)
        self.channels = ch
        self.n_down = n_down

    def forward(self, img_m11):  # noqa: D102
        return self.net(img_m11)


class Decoder(nn.Module):
    """Linear unpacking of the latent, transposed convolutions back to the image size, tanh."""

    def __init__(self, image_size: int, channels: int, n_up: int, latent_dim: int) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.fc = nn.Sequential(nn.Linear(latent_dim, channels * _BOTTOM * _BOTTOM), nn.GELU())
        layers: list[nn.Module] = []
        ch = channels
        for _ in range(n_up):
            out = max(ch // 2, 16)
            layers += [nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1), nn.BatchNorm2d(out),
                       nn.GELU(), nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out),
                       nn.GELU()]
            ch = out
        layers += [nn.Conv2d(ch, 3, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latent):  # noqa: D102
        x = self.fc(latent).view(-1, self.channels, _BOTTOM, _BOTTOM)
        x = self.net(x)
        if x.shape[-1] != self.image_size:  # sizes that are not 4 * 2^k
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False)
        return x


class Autoencoder(nn.Module):
    """``generator(decoder(encoder(x)))``: the generator learns to refine decoded images of its
    own domain, which is the initialisation seeds/000 transfers into the CycleGAN."""

    def __init__(self, generator: nn.Module, image_size: int, channels: int = 32,
                 latent_dim: int = 16) -> None:
        super().__init__()
        self.encoder = Encoder(image_size, channels, latent_dim)
        self.decoder = Decoder(image_size, self.encoder.channels, self.encoder.n_down, latent_dim)
        self.generator = generator

    def forward(self, img_m11):  # noqa: D102
        return self.generator(self.decoder(self.encoder(img_m11)))
