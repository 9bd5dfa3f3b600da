"""Autoencoders whose generator initialises a CycleGAN generator (``variants.<name>.init: ae``),
registered by ``ae.kind``:

- ``ae``: encoder -> latent -> decoder -> generator with batch norm in encoder and decoder
  (learns at lr 1e-3 in a few epochs);
- ``seed000``: seed 000's network exactly (the UvA deep-learning tutorial's CIFAR autoencoder
  with GELU, c_hid = ``ae.enc_channels``, code = ``ae.latent_dim``, then the generator). The
  report's layer table, at 32 px with c_hid 64, a 256-d code and the 3-block ngf-64 ResNet
  generator, lists 1,866,243 parameters outside the generator and 4,297,219 in it: 6,163,462.
  The table's printed total reads 6,163,402, 60 fewer than its own rows (no layer has 60
  parameters; torchinfo 1.5-1.8 print 6,163,462 for this network);
- ``vae``: the ``ae`` network with a Gaussian code (mean and log-variance), the variant seed 000
  abandoned when its KL term vanished;
- ``inpaint``: no encoder: random squares of the image are masked and the generator fills them
  in (UVCGAN's generator pretraining).

Every autoencoder has a ``generator`` attribute (what is transferred) and ``forward_train``,
which returns the tensors its loss needs (``recon``; ``mu``/``logvar``; ``mask``)."""

from __future__ import annotations

import math

import torch
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

    def forward_train(self, img_m11) -> dict[str, torch.Tensor]:
        """The reconstruction (MSE target)."""
        return {"recon": self(img_m11)}


class Seed000Autoencoder(nn.Module):
    """Seed 000's autoencoder: three stride-2 3x3 GELU convolution pairs (c, c, 2c, 2c, 2c
    channels) flattened to a linear code; a linear layer and three stride-2 transposed
    convolutions (with a 3x3 convolution between them) back to the image, tanh; then the
    generator. At 32 px the flattened map is 2c x 4 x 4; other sizes (multiples of 8) scale
    it."""

    def __init__(self, generator: nn.Module, image_size: int, channels: int = 64,
                 latent_dim: int = 256) -> None:
        super().__init__()
        c, self.bottom = channels, image_size // 8
        flat = 2 * c * self.bottom * self.bottom
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1, stride=2), nn.GELU(),
            nn.Flatten(), nn.Linear(flat, latent_dim))
        self.unpack = nn.Sequential(nn.Linear(latent_dim, flat), nn.GELU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, 2 * c, 3, output_padding=1, padding=1, stride=2),
            nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GELU(),
            nn.ConvTranspose2d(2 * c, c, 3, output_padding=1, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.ConvTranspose2d(c, 3, 3, output_padding=1, padding=1, stride=2), nn.Tanh())
        self.generator = generator

    def forward(self, img_m11):  # noqa: D102
        code = self.encoder(img_m11)
        grid = self.unpack(code).view(-1, self.decoder[0].in_channels, self.bottom, self.bottom)
        return self.generator(self.decoder(grid))

    def forward_train(self, img_m11) -> dict[str, torch.Tensor]:
        """The reconstruction (MSE target)."""
        return {"recon": self(img_m11)}


class VariationalAutoencoder(Autoencoder):
    """The ``ae`` network with a Gaussian code: the encoder outputs a mean and a log-variance
    per latent dimension; training decodes a sample, evaluation the mean."""

    def __init__(self, generator: nn.Module, image_size: int, channels: int = 32,
                 latent_dim: int = 16) -> None:
        super().__init__(generator, image_size, channels, latent_dim)
        self.encoder = Encoder(image_size, channels, 2 * latent_dim)

    def forward_train(self, img_m11) -> dict[str, torch.Tensor]:
        """Reconstruction of a reparameterised sample, with the code's mean and log-variance."""
        mu, logvar = self.encoder(img_m11).chunk(2, dim=1)
        latent = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return {"recon": self.generator(self.decoder(latent)), "mu": mu, "logvar": logvar}

    def forward(self, img_m11):  # noqa: D102
        mu, _ = self.encoder(img_m11).chunk(2, dim=1)
        return self.generator(self.decoder(mu))


class InpaintingAutoencoder(nn.Module):
    """Masked-image pretraining of the generator alone (UVCGAN): a ``ratio`` of the
    ``patch`` x ``patch`` squares of each image is set to 0 (mid-grey) and the generator
    reconstructs the whole image."""

    def __init__(self, generator: nn.Module, patch: int = 4, ratio: float = 0.4) -> None:
        super().__init__()
        self.generator, self.patch, self.ratio = generator, patch, ratio

    def random_mask(self, img_m11: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W, 1 where a pixel is masked (torch's RNG: seeded runs repeat)."""
        n, _, h, w = img_m11.shape
        cells = (n, 1, math.ceil(h / self.patch), math.ceil(w / self.patch))
        keep = torch.rand(cells, device=img_m11.device) >= self.ratio
        mask = (~keep).to(img_m11.dtype)
        mask = mask.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)
        return mask[:, :, :h, :w]

    def forward_train(self, img_m11) -> dict[str, torch.Tensor]:
        """The reconstruction of a masked copy, with the mask."""
        mask = self.random_mask(img_m11)
        return {"recon": self.generator(img_m11 * (1 - mask)), "mask": mask}

    def forward(self, img_m11):  # noqa: D102
        return self.forward_train(img_m11)["recon"]


def _ae(generator: nn.Module, image_size: int, cfg) -> nn.Module:
    return Autoencoder(generator, image_size, cfg.enc_channels, cfg.latent_dim)


def _seed000(generator: nn.Module, image_size: int, cfg) -> nn.Module:
    return Seed000Autoencoder(generator, image_size, cfg.enc_channels, cfg.latent_dim)


def _vae(generator: nn.Module, image_size: int, cfg) -> nn.Module:
    return VariationalAutoencoder(generator, image_size, cfg.enc_channels, cfg.latent_dim)


def _inpaint(generator: nn.Module, image_size: int, cfg) -> nn.Module:
    return InpaintingAutoencoder(generator, cfg.mask_patch, cfg.mask_ratio)


AUTOENCODERS = {"ae": _ae, "seed000": _seed000, "vae": _vae, "inpaint": _inpaint}


def build_autoencoder(ae_cfg, generator: nn.Module, image_size: int) -> nn.Module:
    """The autoencoder ``ae_cfg.kind`` around ``generator`` (its other layers keep torch's
    default init, which suits their GELU/batch-norm stacks)."""
    return AUTOENCODERS[ae_cfg.kind](generator, image_size, ae_cfg)
