"""Losses as pure functions of tensors. Adversarial losses are registered by ``train.gan_loss``.

Discriminators output logits; each GAN loss says how real/fake logits are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


class GanLoss(Protocol):
    """How a GAN loss scores a discriminator's outputs."""

    def generator(self, pred_fake: torch.Tensor) -> torch.Tensor:
        """Loss of the generator: make D call its fakes real."""

    def discriminator(self, pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
        """Loss of the discriminator on a real and a fake batch."""


@dataclass(frozen=True)
class LSGAN:
    """Least squares GAN (Mao et al.), the CycleGAN paper's choice: E[(D(x)-1)^2] + E[D(G(z))^2],
    each half weighted 0.5 for D as in the paper's code."""

    def generator(self, pred_fake: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.mse_loss(pred_fake, torch.ones_like(pred_fake))

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return 0.5 * (F.mse_loss(pred_real, torch.ones_like(pred_real))
                      + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))


@dataclass(frozen=True)
class VanillaGAN:
    """The original non-saturating GAN loss with logits (Goodfellow et al.)."""

    def generator(self, pred_fake: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return 0.5 * (
            F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
            + F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake)))


@dataclass(frozen=True)
class HingeGAN:
    """Hinge loss (Lim & Ye; SAGAN): D: E[relu(1-D(x))] + E[relu(1+D(G(z)))], G: -E[D(G(z))]."""

    def generator(self, pred_fake: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return -pred_fake.mean()

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return F.relu(1.0 - pred_real).mean() + F.relu(1.0 + pred_fake).mean()


GAN_LOSSES: dict[str, GanLoss] = {"lsgan": LSGAN(), "vanilla": VanillaGAN(), "hinge": HingeGAN()}


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """Cycle consistency ||F(G(x)) - x||_1 (CycleGAN eq. 2)."""
    return F.l1_loss(reconstructed, real)


def identity_loss(real: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Identity mapping ||G(y) - y||_1 (CycleGAN sec. 5.2, keeps colours of paintings)."""
    return F.l1_loss(same, real)


def reconstruction_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """The autoencoder's MSE reconstruction loss (seeds/000)."""
    return F.mse_loss(reconstructed, real)
