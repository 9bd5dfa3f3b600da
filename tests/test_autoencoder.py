"""Autoencoder kinds (models/autoencoder.py) and their training task
(training/autoencoder.py): seed 000's network exactly, the VAE's KL with annealing and free
bits, masked-patch inpainting."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from cyclelab import config
from cyclelab.models.autoencoder import AUTOENCODERS, Seed000Autoencoder, build_autoencoder
from cyclelab.models.build import build_generator, count_parameters
from cyclelab.models.generators import ResnetGenerator
from cyclelab.runtime import make_runtime
from cyclelab.training.autoencoder import AutoencoderTask, kl_beta, kl_per_dimension
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
    batches = SingleBatches(images, ae_cfg.batch_size, seed=0, flip=True)
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


def test_single_batches_flip_only_when_asked_and_crop_as_training():
    from cyclelab.data.dataset import SingleBatches, to_m11

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 8, 8), generator=gen, dtype=torch.uint8)
    with pytest.raises(TypeError):  # no silent default: the stage passes train.flip
        SingleBatches(images, 4, seed=0)
    originals = {to_m11(img).numpy().tobytes() for img in images}
    flipped = {to_m11(img.flip(-1)).numpy().tobytes() for img in images}
    unflipped = [img.numpy().tobytes() for epoch in range(5)
                 for img in next(iter(SingleBatches(images, 4, seed=0, flip=False)(epoch)))]
    assert set(unflipped) == originals
    seen = [img.numpy().tobytes() for epoch in range(5)
            for img in next(iter(SingleBatches(images, 4, seed=0, flip=True)(epoch)))]
    assert set(seen) & flipped and set(seen) <= originals | flipped
    cropping = SingleBatches(images, 4, seed=0, flip=False, load_size=12, crop_size=8)
    assert next(iter(cropping(0))).shape == (4, 3, 8, 8)
    # The sample grid's view: resized to 12 px, the central 8-px square.
    resized = torch.nn.functional.interpolate(images.float(), size=(12, 12), mode="bicubic",
                                              align_corners=False, antialias=True)
    expected = to_m11(resized.round().clamp(0, 255).to(torch.uint8)[..., 2:10, 2:10])
    assert torch.equal(cropping.center(images), expected)


def test_pretrain_stage_augments_as_training_does(tmp_path, tiny_raw, monkeypatch):
    """pipeline/pretrain_ae.py hands train.flip and the crop settings to its batches (on
    digits, where train.flip is false, an autoencoder trained on flips learns mirrored
    digits); the autoencoder trains on 24-px crops while its generator, built for the
    prepared 32 px, still loads into the CycleGAN's."""
    import runpy
    import sys

    from cyclelab import tracking
    from cyclelab.data import dataset
    from cyclelab.data.digits import generate_digits
    from cyclelab.models.init import load_weights
    from tests.conftest import REPO, write_params

    (tmp_path / ".dvc").mkdir()  # the repo root MLflow's store is resolved from
    generate_digits(tmp_path / "data" / "prepared", seed=0, image_size=32, train_per_domain=4,
                    test_per_domain=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.setattr(tracking.StageRun, "log_model", lambda self, module, name, size: None)
    made, steps = [], []
    original_init = dataset.SingleBatches.__init__

    def spy(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(dataset.SingleBatches, "__init__", spy)
    original_step = AutoencoderTask.step

    def step(self, batch):
        steps.append(batch.shape)
        return original_step(self, batch)

    monkeypatch.setattr(AutoencoderTask, "step", step)
    tiny_raw["model"]["n_layers_d"] = 2  # a PatchGAN that takes 24 px
    tiny_raw["train"].update(flip=False, load_size=28, crop_size=24, num_samples=1)
    tiny_raw["ae"].update(batch_size=2)
    params = write_params(tmp_path / "params.yaml", tiny_raw)
    script = str(REPO / "pipeline" / "pretrain_ae.py")
    monkeypatch.setattr(sys, "argv", [script, "--params", str(params), "--domain", "A"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(script, run_name="__main__")
    assert done.value.code == 0
    assert [(b.flip, b.load_size, b.crop_size) for b in made] == [(False, 28, 24)]
    assert steps and all(shape[-2:] == (24, 24) for shape in steps)
    cfg = config.from_dict(tiny_raw)
    load_weights(build_generator(cfg.model, 32), tmp_path / "data" / "ae" / "A" / "generator.pt",
                 "pretrain_ae@A")
