"""Autoencoder kinds (models/autoencoder.py) and their training task
(training/autoencoder.py): seed 000's network exactly, the VAE's KL with annealing and free
bits, masked-patch inpainting."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from cyclelab import config
from cyclelab.models import build_generator, count_parameters
from cyclelab.models.autoencoder import AUTOENCODERS, Seed000Autoencoder, build_autoencoder
from cyclelab.models.generators import ResnetGenerator
from cyclelab.training.autoencoder import AutoencoderTask, kl_beta, kl_per_dimension
from cyclelab.training.runtime import make_runtime
from tests.conftest import SHARED

# Seed 000's layer table (torchinfo, 32 px): the parameter count of each row with weights,
# in order, then the generator's. Its rows add up to 6,163,462; the table prints "Total
# params: 6,163,402", 60 fewer, which no layer of the network can account for.
SEED000_ROWS = [1_792, 36_928, 73_856, 147_584, 147_584, 524_544,            # encoder
                526_336, 147_584, 147_584, 73_792, 36_928, 1_731]            # decoder
SEED000_GENERATOR = 4_297_219
SEED000_TOTAL = 6_163_462
SEED000_PRINTED_TOTAL = 6_163_402


def seed000_network() -> Seed000Autoencoder:
    with torch.device("meta"):  # shapes only
        return Seed000Autoencoder(ResnetGenerator(ngf=64, n_blocks=3), image_size=32,
                                  channels=64, latent_dim=256)


def test_seed000_autoencoder_has_the_reports_parameter_counts():
    ae = seed000_network()
    assert count_parameters(ae.generator) == SEED000_GENERATOR == 4_297_219
    assert count_parameters(ae) == SEED000_TOTAL == sum(SEED000_ROWS) + SEED000_GENERATOR
    assert SEED000_PRINTED_TOTAL - SEED000_TOTAL == -60
    rows = [count_parameters(m) for m in ae.modules()
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear)
            and not any(m is g for g in ae.generator.modules())]
    assert rows == SEED000_ROWS


def test_seed000_rows_are_the_reports_rows():
    report = sorted(SHARED.glob("seeds/000_*.txt"))
    if not report:
        pytest.skip("../shared/seeds is not here")
    text = report[0].read_text(encoding="utf-8")
    rows = [int(n.replace(",", "")) for n in
            re.findall(r"^\w+: 3-\d+\t\[[^\]]*\]\t([\d,]+)$", text, flags=re.M)]
    assert rows == [*SEED000_ROWS, SEED000_GENERATOR]
    assert "Total params: 6,163,402" in text


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("kind", config.AE_KINDS)
def test_every_autoencoder_kind_reconstructs_and_transfers(kind, size):
    assert tuple(AUTOENCODERS) == config.AE_KINDS
    ae_cfg = dataclasses.replace(config.AEConfig(), kind=kind, enc_channels=4, latent_dim=8)
    model_cfg = config.ModelConfig(ngf=4, n_blocks=1)
    ae = build_autoencoder(ae_cfg, build_generator(model_cfg, size), size)
    real = torch.rand(2, 3, size, size) * 2 - 1
    out = ae.forward_train(real)
    assert out["recon"].shape == real.shape
    assert out["recon"].abs().max() <= 1
    out["recon"].mean().backward()
    assert all(p.grad is not None for p in ae.generator.parameters())
    fresh = build_generator(model_cfg, size)
    fresh.load_state_dict(ae.generator.state_dict(), strict=True)


def test_kl_annealing_and_free_bits():
    cfg = dataclasses.replace(config.AEConfig(), kl_weight=2.0, kl_anneal_epochs=2)
    assert [kl_beta(cfg, s, 5) for s in (0, 5, 10, 50)] == [0.0, 1.0, 2.0, 2.0]
    assert kl_beta(dataclasses.replace(cfg, kl_anneal_epochs=0), 0, 5) == 2.0
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    assert torch.equal(kl_per_dimension(mu, logvar), torch.zeros(3))
    kl = kl_per_dimension(torch.ones(4, 3), torch.zeros(4, 3))
    assert torch.allclose(kl, torch.full((3,), 0.5))


def test_vae_kl_stays_above_zero_on_the_embedded_digits(tmp_path):
    from cyclelab.data.dataset import SingleBatches, load_folder
    from cyclelab.data.digits import generate_digits

    generate_digits(tmp_path, seed=0, image_size=32, train_per_domain=8, test_per_domain=1)
    images = load_folder(tmp_path / "trainB")
    torch.manual_seed(0)
    ae_cfg = dataclasses.replace(config.AEConfig(), kind="vae", enc_channels=8, latent_dim=8,
                                 kl_anneal_epochs=1, batch_size=4)
    ae = build_autoencoder(ae_cfg, build_generator(config.ModelConfig(ngf=4, n_blocks=1)), 32)
    batches = SingleBatches(images, ae_cfg.batch_size, seed=0)
    task = AutoencoderTask(ae, ae_cfg, make_runtime("cpu"), steps_per_epoch=len(batches))
    logs = [task.step(batch) for epoch in range(3) for batch in batches(epoch)]
    assert [round(log["kl_beta"], 2) for log in logs[:3]] == [0.0, 0.5, 1.0]
    assert all(log["kl"] > 0.05 for log in logs)
    assert logs[-1]["kl"] > 0.05 * ae_cfg.latent_dim


def test_inpainting_masks_squares_and_learns_to_fill_them():
    torch.manual_seed(0)
    ae_cfg = dataclasses.replace(config.AEConfig(), kind="inpaint", mask_patch=4,
                                 mask_ratio=0.4, lr=2.0e-3)
    ae = build_autoencoder(ae_cfg, build_generator(config.ModelConfig(ngf=8, n_blocks=1)), 32)
    mask = ae.random_mask(torch.zeros(64, 3, 32, 32))
    assert mask.shape == (64, 1, 32, 32)
    assert mask.mean().item() == pytest.approx(0.4, abs=0.03)
    squares = mask.view(64, 1, 8, 4, 8, 4)  # constant inside each 4x4 square
    assert torch.equal(squares.amax(dim=(3, 5)), squares.amin(dim=(3, 5)))
    task = AutoencoderTask(ae, ae_cfg, make_runtime("cpu"))
    real = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(4, 3, 32, 32).contiguous()
    first = task.step(real)["loss_masked"]
    for _ in range(30):
        last = task.step(real)["loss_masked"]
    assert last < 0.5 * first
