"""``model.upsample`` (resize-convolution against transposed convolution) and
``train.diffaugment`` (DiffAugment on every discriminator input)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from cyclelab import config
from cyclelab.errors import ConfigError
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.models.layers import upsample
from cyclelab.runtime import make_runtime
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.diffaugment import DiffAugment

FAMILIES = ("resnet", "unet", "pixelshuffle", "attention")


def _strided_transposed(net: nn.Module) -> int:
    return sum(1 for m in net.modules()
               if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)
               or isinstance(m, nn.PixelShuffle))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_generator_family_up_samples_by_resize_and_convolution_when_asked(family):
    model = config.ModelConfig(generator=family, ngf=8, n_blocks=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    default = build_generator(model, 32)
    resized = build_generator(dataclasses.replace(model, upsample="resize_conv"), 32)
    assert _strided_transposed(default) > 0
    assert _strided_transposed(resized) == 0
    ups = [m for m in resized.modules() if isinstance(m, nn.Upsample)]
    # resnet, attention, pixelshuffle: n_downsampling (2) steps; the U-Net: one per level (5).
    assert len(ups) == (5 if family == "unet" else 2)
    assert all(m.mode == "nearest" and m.scale_factor == 2 for m in ups)
    out = resized(x)
    assert out.shape == x.shape and out.abs().max() <= 1


@pytest.mark.parametrize("kernel", [3, 4])
def test_resize_convolution_has_no_checkerboard_where_a_transposed_one_does(kernel):
    """A flat feature map: each output pixel of a stride-2 transposed convolution sums a
    different subset of kernel taps (a 2-periodic pattern for generic weights); a resize then a
    convolution gives every pixel the same taps, so the output stays flat (Odena et al.)."""
    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    transposed = nn.Sequential(*upsample(4, 4, "transpose", kernel=kernel))(flat)[..., 2:-2, 2:-2]
    resized = nn.Sequential(*upsample(4, 4, "resize_conv", kernel=kernel))(flat)
    assert transposed.shape[-1] + 4 == resized.shape[-1] == 16
    assert transposed.std(dim=(-1, -2)).min() > 1e-3
    assert resized.std(dim=(-1, -2)).max() < 1e-6


def test_upsample_and_diffaugment_are_validated_with_the_key():
    with pytest.raises(ConfigError, match=r"model\.upsample: got 'bilinear', allowed: "
                                          r"transpose, resize_conv"):
        config.from_dict({"model": {"upsample": "bilinear"}})
    with pytest.raises(ConfigError, match=r"train\.diffaugment\[1\]: got 'flip', allowed"):
        config.from_dict({"train": {"diffaugment": ["color", "flip"]}})


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_each_policy_keeps_shapes_and_lets_gradients_reach_the_generator(policy):
    torch.manual_seed(0)
    G = build_generator(config.ModelConfig(ngf=4, n_blocks=1))
    D = build_discriminator(config.ModelConfig(ndf=4, n_layers_d=2))
    augment = DiffAugment([policy], seed=1)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    fake = G(x)
    (seen,) = augment(fake)
    assert seen.shape == fake.shape and not torch.equal(seen, fake)
    D(seen).mean().backward()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_the_real_and_fake_images_of_one_call_get_the_same_transforms():
    augment = DiffAugment(["color", "translation", "cutout"], seed=3)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    aug_real, aug_same, aug_short = augment(real, real.clone(), real[:2].clone())
    assert torch.equal(aug_real, aug_same)
    assert torch.equal(aug_short, aug_real[:2])  # a shorter batch (a pool's block) too
    again_real, _ = augment(real, real)
    assert not torch.equal(again_real, aug_real)  # a new call draws new transforms


def test_translation_and_cutout_move_and_mask_as_the_paper_code():
    image = torch.arange(64.0).view(1, 1, 8, 8).expand(1, 3, 8, 8).clone()
    shift = DiffAugment(["translation"], seed=0)
    (moved,) = shift(image)
    # A shift by (dy, dx) within 1/8 of the side (1 px at 8 px), zeros shifted in.
    matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if torch.equal(moved, torch.nn.functional.pad(image, [1, 1, 1, 1])[
                   ..., 1 + dy:9 + dy, 1 + dx:9 + dx])]
    assert len(matches) == 1
    (cut,) = DiffAugment(["cutout"], seed=0)(torch.ones(64, 3, 8, 8))
    zeroed = (cut[:, 0] == 0).sum(dim=(1, 2))
    assert zeroed.max() == 16 and zeroed.min() >= 4  # a 4x4 square, clipped at the borders
    assert torch.equal(cut[:, 0], cut[:, 2])  # the same mask on every channel


def test_off_passes_images_through_and_draws_nothing():
    augment = DiffAugment([], seed=0)
    state = augment.generator.get_state()
    x = torch.rand(2, 3, 8, 8)
    assert augment(x)[0] is x and torch.equal(augment.generator.get_state(), state)
    assert config.TrainConfig().diffaugment == []


def test_the_augmentation_stream_resumes_from_its_state():
    a = DiffAugment(["color", "translation"], seed=5)
    x = torch.rand(2, 3, 8, 8)
    a(x)
    b = DiffAugment(["color", "translation"], seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x)[0], b(x)[0])


def test_a_cyclegan_step_augments_every_discriminator_input(tiny_params):
    """With the policy on, D sees augmented images in G's update (the fakes) and in D's
    (real and pooled fakes of one call, transformed alike); the checkpoint carries its RNG."""
    m = tiny_params.model
    train = dataclasses.replace(tiny_params.train, diffaugment=["translation", "cutout"])
    torch.manual_seed(0)
    gan = CycleGAN(build_generator(m), build_generator(m), build_discriminator(m),
                   build_discriminator(m), train, make_runtime("cpu"))
    calls = []
    real_augment = gan.augment

    def recorder(*batches):
        calls.append([tuple(b.shape) for b in batches])
        return real_augment(*batches)

    gan.augment = recorder
    batch = (torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
    losses = gan.step(batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert [len(c) for c in calls] == [1, 1, 2, 2]  # G_ab's and G_ba's fakes; D_b's, D_a's
    gan.augment = real_augment
    assert "augment" in gan.extra_state()
