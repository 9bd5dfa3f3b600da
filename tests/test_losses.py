"""Losses are pure functions of tensors: checked on hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from cyclelab.losses import (
    GAN_LOSSES,
    colour_consistency_loss,
    cycle_loss,
    edge_consistency_loss,
    feature_matching_loss,
    gradient_penalty,
    identity_loss,
    identity_weight,
    reconstruction_loss,
    sobel_edges,
)


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


@pytest.mark.parametrize("name", sorted(set(GAN_LOSSES) - {"relativistic"}))
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


def test_wgan_values():
    gan = GAN_LOSSES["wgan-gp"]
    # D: E[D(fake)] - E[D(real)] = 1 - 2; G: -E[D(fake)]
    assert gan.discriminator(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])).item() == -1.0
    assert gan.generator(torch.tensor([0.0, 2.0])).item() == -1.0


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def dual(patch, glob):
    return {"patch": torch.tensor(patch).view(-1, 1, 1, 1), "global_": torch.tensor(glob)[:, None]}


def test_relativistic_values():
    gan = GAN_LOSSES["relativistic"]
    real, fake = dual([1.0, 3.0], [0.5, 1.5]), dual([0.0, 2.0], [-0.5, 0.5])
    # Real side: patch real - mean fake = [0, 2] vs 1 -> MSE 1; global [0.5, 1.5] vs 1.
    # Fake side: patch fake - mean real = [-2, 0] vs 0 -> MSE 2; global [-1.5, -0.5] vs 0.
    bce = (softplus(-0.5) + softplus(-1.5)) / 2  # the same on both sides here
    assert gan.discriminator(real, fake).item() == pytest.approx(
        0.5 * (0.7 * 1 + 0.3 * bce + 0.7 * 2 + 0.3 * bce), rel=1e-6)
    # G swaps the targets: patch [-2, 0] vs 1 -> 5; [0, 2] vs 0 -> 2; global BCE with logits
    # [-1.5, -0.5] vs 1 and [0.5, 1.5] vs 0.
    bce_g = (softplus(1.5) + softplus(0.5)) / 2
    assert gan.generator(fake, real).item() == pytest.approx(
        0.5 * (0.7 * 5 + 0.3 * bce_g + 0.7 * 2 + 0.3 * bce_g), rel=1e-6)
    assert gan.accuracy(real, fake) == (1.0, 1.0)


def test_relativistic_generator_gradient_reaches_fakes_through_both_sides():
    gan = GAN_LOSSES["relativistic"]
    fake = dual([0.0, 0.0], [0.0, 0.0])
    fake["patch"].requires_grad_()
    gan.generator(fake, dual([1.0, 1.0], [1.0, 1.0])).backward()
    assert (fake["patch"].grad < 0).all()


def test_accuracy_counts_correct_calls():
    assert GAN_LOSSES["lsgan"].accuracy(torch.tensor([0.9, 0.2]),
                                        torch.tensor([0.1, 0.7])) == (0.5, 0.5)
    assert GAN_LOSSES["vanilla"].accuracy(torch.tensor([1.0, 2.0]),
                                          torch.tensor([-1.0, -3.0])) == (1.0, 1.0)


def test_gradient_penalty_on_a_linear_critic():
    # D(x) = <w, x>: the gradient is w for every x_hat, so the penalty is (||w|| - 1)^2.
    w = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)  # ||w|| = sqrt(12 * 0.25) = sqrt(3)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx((math.sqrt(3) - 1) ** 2, rel=1e-5)
    penalty.backward()  # differentiable in D's weights: d/dw = 2 (||w|| - 1) w / ||w||
    expected = 2 * (math.sqrt(3) - 1) * 0.5 / math.sqrt(3)
    assert w.grad.sub(expected).abs().max().item() < 1e-5


def test_gradient_penalty_is_zero_at_unit_norm():
    w = torch.zeros(1, 1, 1, 4)
    w[..., 0] = 1.0
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    assert gradient_penalty(critic, torch.randn(3, 1, 1, 4), torch.randn(3, 1, 1, 4)).item() \
        == pytest.approx(0.0, abs=1e-10)


def test_feature_matching_matches_batch_means():
    fake = [torch.ones(2, 2, 2, 2), torch.full((2, 1, 1, 1), 3.0)]
    real = [torch.zeros(2, 2, 2, 2), torch.ones(2, 1, 1, 1)]
    # Layer 1: |1 - 0| = 1; layer 2: |3 - 1| = 2; mean 1.5.
    assert feature_matching_loss(fake, real).item() == pytest.approx(1.5)
    # Unpaired: a permutation of the real batch changes nothing.
    real = [torch.arange(4.0).view(4, 1, 1, 1)]
    assert feature_matching_loss([real[0].flip(0)], real).item() == 0.0


def test_edge_and_colour_consistency_values():
    flat = torch.zeros(1, 3, 4, 4)
    ramp = (torch.arange(4.0) * 0.1).expand(1, 3, 4, 4).contiguous()
    # Sobel x on a 0.1-per-pixel ramp: 4 * 0.2 = 0.8 inside, 0.4 at the replicated borders.
    assert sobel_edges(ramp)[0, 0, 0].tolist() == pytest.approx([0.4, 0.8, 0.8, 0.4], rel=1e-5)
    assert edge_consistency_loss(flat, ramp).item() == pytest.approx(0.6, rel=1e-5)
    assert edge_consistency_loss(ramp, ramp + 0.5).item() == pytest.approx(0.0, abs=1e-6)
    half = torch.zeros(1, 3, 4, 4)
    half[..., :2] = 1.0
    assert colour_consistency_loss(flat, half, grid=2).item() == pytest.approx(0.5)
    assert colour_consistency_loss(flat, half, grid=1).item() == pytest.approx(0.5)
    assert colour_consistency_loss(half, half.flip(-2), grid=2).item() == 0.0


def test_identity_weight_fraction_or_absolute():
    assert identity_weight(10.0, 0.5, "fraction") == 5.0   # the paper's code
    assert identity_weight(5.0, 10.0, "absolute") == 10.0  # seeds/001 v1



def _penalty(device: str, autocast: torch.dtype | None = None, fake_dtype=torch.float32):
    """The gradient penalty of a small PatchGAN (fp32, or under ``autocast``) with the fake
    batch in ``fake_dtype``, and the dtypes the critic saw (input, output)."""
    from cyclelab.config import ModelConfig
    from cyclelab.models.build import build_discriminator

    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(ndf=8, n_layers_d=2)).to(device)
    seen = []
    D.register_forward_hook(lambda net, args, out: seen.append((args[0].dtype, out.dtype)))
    gen = torch.Generator().manual_seed(1)
    real, fake = (torch.rand(2, 3, 32, 32, generator=gen).mul(2).sub(1).to(device)
                  for _ in range(2))
    alpha = torch.rand(2, 1, 1, 1, generator=gen).to(device)
    with torch.autocast(device, dtype=autocast or torch.float32, enabled=autocast is not None):
        return gradient_penalty(D, real, fake.to(fake_dtype), alpha), seen


def _check_penalty_is_fp32(device: str, dtype: torch.dtype) -> None:
    fp32, _ = _penalty(device)
    assert fp32.item() > 0.1  # a penalty worth comparing
    # Autocast around the D update does not reach the penalty: its inner gradient is not
    # loss-scaled, so D runs, and is differentiated, in fp32.
    same_inputs, seen = _penalty(device, dtype)
    assert seen == [(torch.float32, torch.float32)]
    assert same_inputs.dtype == torch.float32
    assert same_inputs.item() == pytest.approx(fp32.item(), rel=1e-5)
    # A fake made under autocast (a generator's output): only its own rounding remains.
    reduced_fake, seen = _penalty(device, dtype, fake_dtype=dtype)
    assert seen == [(torch.float32, torch.float32)]
    assert reduced_fake.item() == pytest.approx(fp32.item(), rel=5e-3)


def test_gradient_penalty_is_computed_in_fp32_under_bf16_autocast():
    _check_penalty_is_fp32("cpu", torch.bfloat16)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gradient_penalty_is_computed_in_fp32_under_cuda_autocast(dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    _check_penalty_is_fp32("cuda", dtype)


def test_a_registered_auxiliary_loss_is_weighted_logged_and_summed_by_the_step(tiny_params,
                                                                             monkeypatch):
    """Adding an auxiliary generator loss is one registry entry: the step computes it for both
    generators, adds weight x (both terms) to loss_G and logs loss_<name>."""
    import dataclasses

    from cyclelab import losses
    from cyclelab.models.build import build_discriminator, build_generator
    from cyclelab.runtime import make_runtime
    from cyclelab.training.cyclegan import CycleGAN

    def step(train_cfg) -> dict:
        torch.manual_seed(0)
        m = tiny_params.model
        gan = CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                       build_discriminator(m), train_cfg, make_runtime("cpu"))
        gen = torch.Generator().manual_seed(1)
        return gan.step(tuple(torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for _ in "ab"))

    before = step(tiny_params.train)
    # A constant loss of 1 per generator (its gradient is zero): loss_G grows by exactly 2 x
    # the weight, every other number stays as it was. The weight key is an existing one.
    probe = losses.AuxLoss("probe", "lambda_color", lambda v: v.fake.sum() * 0 + 1)
    monkeypatch.setattr(losses, "AUX_LOSSES", [probe])
    after = step(dataclasses.replace(tiny_params.train, lambda_color=3.0))
    assert after["loss_probe"] == pytest.approx(2.0)
    assert after["loss_G"] == pytest.approx(before["loss_G"] + 6.0, abs=1e-4)
    assert after["loss_D"] == before["loss_D"] and "loss_color" not in after
