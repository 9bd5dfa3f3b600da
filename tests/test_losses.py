"""Losses are pure functions of tensors: checked on hand-computed numbers."""

from __future__ import annotations

import pytest
import torch

from cyclelab.losses import GAN_LOSSES, cycle_loss, identity_loss, reconstruction_loss


def test_lsgan_values():
    gan = GAN_LOSSES["lsgan"]
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    # G: mean((fake - 1)^2) = (1 + 0.25) / 2
    assert gan.generator(fake).item() == pytest.approx(0.625)
    # D: 0.5 * (mean((real-1)^2) + mean(fake^2)) = 0.5 * (0.125 + 0.125)
    assert gan.discriminator(real, fake).item() == pytest.approx(0.125)
    perfect = gan.discriminator(torch.ones(3), torch.zeros(3))
    assert perfect.item() == 0.0


def test_vanilla_matches_log_sigmoid():
    gan = GAN_LOSSES["vanilla"]
    logit = torch.tensor([0.3])
    assert gan.generator(logit).item() == pytest.approx(-torch.log(torch.sigmoid(logit)).item())
    d = gan.discriminator(torch.tensor([2.0]), torch.tensor([-1.0]))
    expected = 0.5 * (-torch.log(torch.sigmoid(torch.tensor(2.0)))
                      - torch.log(1 - torch.sigmoid(torch.tensor(-1.0))))
    assert d.item() == pytest.approx(expected.item(), rel=1e-6)


def test_hinge_values():
    gan = GAN_LOSSES["hinge"]
    assert gan.discriminator(torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])).item() == \
        pytest.approx((0.0 + 0.5) / 2 + (0.0 + 1.0) / 2)
    assert gan.generator(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_gan_losses_push_the_right_way(name):
    gan = GAN_LOSSES[name]
    fake = torch.zeros(4, requires_grad=True)
    gan.generator(fake).backward()
    assert (fake.grad < 0).all()  # raising D(fake) lowers the generator loss


def test_l1_and_mse_terms():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert cycle_loss(a, b).item() == pytest.approx(0.5)
    assert identity_loss(a, b).item() == pytest.approx(0.5)
    assert reconstruction_loss(a, b).item() == pytest.approx(0.25)
