"""Losses as pure functions of tensors. Adversarial losses are registered by ``train.gan_loss``.

Discriminators output logits; each GAN loss says how real/fake logits are scored, and how a
prediction counts as correct (discriminator accuracy, seeds/002 Fig. 10). The relativistic loss
of seeds/004 reads both heads of the ``dual_head`` discriminator: its predictions are the dicts
``{"patch": N x 1 x h x w, "global_": N x 1}`` of ``DualHeadDiscriminator.forward_all``; every
other loss reads the patch logits alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F


class GanLoss(Protocol):
    """How a GAN loss scores a discriminator's outputs."""

    #: the generator loss also reads D(real) (relativistic losses)
    needs_real_for_generator: bool
    #: the predictions are ``forward_all`` dicts (patch and global heads), not patch logits
    needs_global: bool

    def generator(self, pred_fake: Any, pred_real: Any = None) -> torch.Tensor:
        """Loss of the generator: make D call its fakes real."""

    def discriminator(self, pred_real: Any, pred_fake: Any) -> torch.Tensor:
        """Loss of the discriminator on a real and a fake batch."""

    def accuracy(self, pred_real: Any, pred_fake: Any) -> tuple[float, float]:
        """Fractions of real and of fake outputs that D classifies correctly."""


def _accuracy(pred_real: torch.Tensor, pred_fake: torch.Tensor,
              threshold: float) -> tuple[float, float]:
    return ((pred_real.detach() > threshold).float().mean().item(),
            (pred_fake.detach() <= threshold).float().mean().item())


@dataclass(frozen=True)
class LSGAN:
    """Least squares GAN (Mao et al.), the CycleGAN paper's choice: E[(D(x)-1)^2] + E[D(G(z))^2],
    each half weighted 0.5 for D as in the paper's code. Targets 1/0: correct means > 0.5."""

    needs_real_for_generator: bool = False
    needs_global: bool = False

    def generator(self, pred_fake, pred_real=None) -> torch.Tensor:  # noqa: D102
        return F.mse_loss(pred_fake, torch.ones_like(pred_fake))

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return 0.5 * (F.mse_loss(pred_real, torch.ones_like(pred_real))
                      + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))

    def accuracy(self, pred_real, pred_fake):  # noqa: D102
        return _accuracy(pred_real, pred_fake, 0.5)


@dataclass(frozen=True)
class VanillaGAN:
    """The original non-saturating GAN loss with logits (Goodfellow et al.)."""

    needs_real_for_generator: bool = False
    needs_global: bool = False

    def generator(self, pred_fake, pred_real=None) -> torch.Tensor:  # noqa: D102
        return F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return 0.5 * (
            F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
            + F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake)))

    def accuracy(self, pred_real, pred_fake):  # noqa: D102
        return _accuracy(pred_real, pred_fake, 0.0)


@dataclass(frozen=True)
class HingeGAN:
    """Hinge loss (Lim & Ye; SAGAN): D: E[relu(1-D(x))] + E[relu(1+D(G(z)))], G: -E[D(G(z))]."""

    needs_real_for_generator: bool = False
    needs_global: bool = False

    def generator(self, pred_fake, pred_real=None) -> torch.Tensor:  # noqa: D102
        return -pred_fake.mean()

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return F.relu(1.0 - pred_real).mean() + F.relu(1.0 + pred_fake).mean()

    def accuracy(self, pred_real, pred_fake):  # noqa: D102
        return _accuracy(pred_real, pred_fake, 0.0)


@dataclass(frozen=True)
class WassersteinGAN:
    """Wasserstein critic (Arjovsky et al.): D: E[D(G(z))] - E[D(x)], G: -E[D(G(z))]. Needs a
    Lipschitz constraint: use it with ``train.lambda_gp`` (10 in Gulrajani et al.'s WGAN-GP).
    The critic has no threshold; a sign convention (real > 0) serves for accuracy."""

    needs_real_for_generator: bool = False
    needs_global: bool = False

    def generator(self, pred_fake, pred_real=None) -> torch.Tensor:  # noqa: D102
        return -pred_fake.mean()

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return pred_fake.mean() - pred_real.mean()

    def accuracy(self, pred_real, pred_fake):  # noqa: D102
        return _accuracy(pred_real, pred_fake, 0.0)


@dataclass(frozen=True)
class RelativisticGAN:
    """Seeds/004 eq. 1.2: relativistic average loss on both heads of the dual-head D.

    For the "real" side: 0.7 * MSE(D(x) - mean D(G(z)), 1) on the patch logits + 0.3 *
    BCE(D(x) - mean D(G(z)), 1) on the global logits; the "fake" side swaps real and fake and
    targets 0. D minimises the mean of both sides; G the same with the targets swapped
    (Jolicoeur-Martineau's RaGAN). Means are over the batch, per patch position."""

    needs_real_for_generator: bool = True
    needs_global: bool = True
    patch_weight: float = 0.7
    global_weight: float = 0.3

    def _side(self, pred: dict, other: dict, target: float) -> torch.Tensor:
        patch = pred["patch"] - other["patch"].mean(0, keepdim=True)
        glob = pred["global_"] - other["global_"].mean(0, keepdim=True)
        return (self.patch_weight * F.mse_loss(patch, torch.full_like(patch, target))
                + self.global_weight * F.binary_cross_entropy_with_logits(
                    glob, torch.full_like(glob, target)))

    def generator(self, pred_fake, pred_real=None) -> torch.Tensor:  # noqa: D102
        return 0.5 * (self._side(pred_fake, pred_real, 1.0) + self._side(pred_real, pred_fake, 0.0))

    def discriminator(self, pred_real, pred_fake):  # noqa: D102
        return 0.5 * (self._side(pred_real, pred_fake, 1.0) + self._side(pred_fake, pred_real, 0.0))

    def accuracy(self, pred_real, pred_fake):  # noqa: D102
        # Relative judgement on the global head: a real image beats the average fake.
        real = pred_real["global_"] - pred_fake["global_"].mean()
        fake = pred_fake["global_"] - pred_real["global_"].mean()
        return ((real.detach() > 0).float().mean().item(),
                (fake.detach() <= 0).float().mean().item())


GAN_LOSSES: dict[str, GanLoss] = {"lsgan": LSGAN(), "vanilla": VanillaGAN(), "hinge": HingeGAN(),
                                  "wgan-gp": WassersteinGAN(), "relativistic": RelativisticGAN()}


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """Cycle consistency ||F(G(x)) - x||_1 (CycleGAN eq. 2)."""
    return F.l1_loss(reconstructed, real)


def identity_loss(real: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Identity mapping ||G(y) - y||_1 (CycleGAN sec. 5.2, keeps colours of paintings)."""
    return F.l1_loss(same, real)


def identity_weight(lambda_cycle: float, lambda_identity: float, mode: str) -> float:
    """The weight of the identity term: ``fraction`` of the cycle weight as in the paper's code
    (0.5 x 10 = 5), or ``absolute`` as seeds/001 wrote it (v1: cycle 5, identity 10)."""
    if mode == "fraction":
        return lambda_cycle * lambda_identity
    if mode == "absolute":
        return lambda_identity
    raise ValueError(f"identity weight mode {mode!r}: expected fraction or absolute")


def reconstruction_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """The autoencoder's MSE reconstruction loss (seeds/000)."""
    return F.mse_loss(reconstructed, real)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = alpha * real + (1 - alpha) * fake, alpha
    uniform per image (Gulrajani et al. 2017; seeds/001 v2 and seeds/004 with weight 10).

    The gradient is of the sum of D's outputs (a patch map) with respect to each image, as in the
    paper's code. ``create_graph`` keeps the penalty differentiable for D's update.

    Computed in fp32 whatever autocast is around it: the loss scaler scales the loss, not this
    inner gradient, so under fp16 it would underflow (and bf16 keeps 3 significant digits)."""
    with torch.autocast(real.device.type, enabled=False):
        if alpha is None:
            alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        x_hat = (alpha.float() * real.detach().float()
                 + (1 - alpha.float()) * fake.detach().float()).requires_grad_(True)
        out = critic(x_hat)
        (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def feature_matching_loss(features_fake: Sequence[torch.Tensor],
                          features_real: Sequence[torch.Tensor]) -> torch.Tensor:
    """L1 between the discriminator's activations on fakes and on real target images, averaged
    over layers (seeds/004 L_feat). The data are unpaired, so each layer's batch means are
    matched (Salimans et al. 2016), not image against an unrelated image."""
    losses = [F.l1_loss(f.mean(0), r.detach().mean(0))
              for f, r in zip(features_fake, features_real, strict=True)]
    return torch.stack(losses).mean()


_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_edges(img_m11: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the luminance (ITU-R 601 weights) with 3x3 Sobel filters."""
    weights = img_m11.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (img_m11 * weights).sum(1, keepdim=True)
    kx = _SOBEL_X.to(img_m11).view(1, 1, 3, 3)
    ky = kx.transpose(-1, -2)
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kx), F.conv2d(padded, ky)
    return torch.sqrt(gx**2 + gy**2 + 1e-12)


def edge_consistency_loss(source: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
    """L1 between the Sobel edge maps of an image and of its translation: keep the outline
    (seeds/004 task 2, animals -> Pokemon sprites)."""
    return F.l1_loss(sobel_edges(translated), sobel_edges(source))


def colour_consistency_loss(source: torch.Tensor, translated: torch.Tensor,
                            grid: int = 4) -> torch.Tensor:
    """L1 between the mean colours of an image and of its translation on a ``grid x grid``
    layout of cells: keep the colour scheme, not the texture (seeds/004 task 2)."""
    return F.l1_loss(F.adaptive_avg_pool2d(translated, grid), F.adaptive_avg_pool2d(source, grid))


# ------------------------------------------------------------ auxiliary generator losses


@dataclass(frozen=True)
class GeneratorView:
    """What an auxiliary loss of one generator may read: its input (``source``), its output
    (``fake``, in the discriminator's domain), and D's activations on the fake and on real
    target images (computed on first use: only feature matching needs them)."""

    source: torch.Tensor
    fake: torch.Tensor
    features_fake: Callable[[], Sequence[torch.Tensor]]
    features_real: Callable[[], Sequence[torch.Tensor]]


@dataclass(frozen=True)
class AuxLoss:
    """One auxiliary generator loss: logged as ``loss_<name>``, weighted by the
    ``train.<weight>`` key (off at 0), computed by ``compute`` for each generator."""

    name: str
    weight: str
    compute: Callable[[GeneratorView], torch.Tensor]
    needs_features: bool = False


# The CycleGAN step adds every entry whose weight is on, for both generators: a new auxiliary
# loss is one entry here and its weight key in config.TrainConfig (docs/extending.md).
AUX_LOSSES: list[AuxLoss] = [
    # Seeds/004 L_feat: D's activations on fakes vs on real target images.
    AuxLoss("fm", "lambda_fm", lambda v: feature_matching_loss(v.features_fake(),
                                                               v.features_real()),
            needs_features=True),
    AuxLoss("edge", "lambda_edge", lambda v: edge_consistency_loss(v.source, v.fake)),
    AuxLoss("color", "lambda_color", lambda v: colour_consistency_loss(v.source, v.fake)),
]


def active_aux_losses(train_cfg: Any) -> list[tuple[AuxLoss, float]]:
    """The registered auxiliary losses ``train_cfg`` switches on, with their weights."""
    return [(aux, float(getattr(train_cfg, aux.weight))) for aux in AUX_LOSSES
            if getattr(train_cfg, aux.weight) > 0]
