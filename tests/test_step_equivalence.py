"""Our CycleGAN step against the plain reference step (``bench/reference_step.py``, the official
update order): same losses, same updated weights, within fp32 tolerance, over two steps (the
second step's losses see the first step's updates, the image pools and the Adam state).

The reference lives in ``bench/`` (it is the benchmark's measuring stick, not a way to train);
pytest's ``pythonpath = ["."]`` makes it importable here as ``bench.reference_step``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from bench.reference_step import ReferenceCycleGAN
from cyclelab import config
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.runtime import make_runtime
from cyclelab.training import cyclegan
from cyclelab.training.cyclegan import CycleGAN, per_sample
from cyclelab.training.pool import ImagePool

LR = 2.0e-4


def _pair(model: dict, train: dict):
    model_cfg = config.ModelConfig(**model)
    train_cfg = config.TrainConfig(lr=LR, lr_d=LR, **train)
    torch.manual_seed(0)
    nets = [build_generator(model_cfg), build_generator(model_cfg),
            build_discriminator(model_cfg), build_discriminator(model_cfg)]
    ours = CycleGAN(*copy.deepcopy(nets), train_cfg, make_runtime("cpu"), seed=0)
    reference = ReferenceCycleGAN(*copy.deepcopy(nets), train_cfg,
                                  ImagePool(train_cfg.pool_size, 1),
                                  ImagePool(train_cfg.pool_size, 2))
    return ours, reference


def _batches(batch: int, size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [tuple(torch.rand(batch, 3, size, size, generator=gen) * 2 - 1 for _ in range(2))
            for _ in range(2)]


@pytest.mark.parametrize("model, train, shared_pixels", [
    ({"ngf": 8, "ndf": 8, "n_blocks": 1}, {"batch_size": 2}, None),
    ({"ngf": 8, "ndf": 8, "n_blocks": 1}, {"batch_size": 1, "gan_loss": "vanilla",
                                           "lambda_identity": 0.0, "pool_size": 0}, None),
    ({"ngf": 8, "ndf": 8, "n_blocks": 1, "norm": "batch"}, {"batch_size": 2}, None),
    ({"ngf": 8, "ndf": 8, "n_blocks": 1}, {"batch_size": 2}, 3 * 32 * 32),
], ids=["lsgan-identity-pool", "vanilla-no-identity", "batchnorm", "large-images"])
def test_one_step_of_ours_equals_the_reference_step(model, train, shared_pixels, monkeypatch):
    if shared_pixels is not None:
        # As with large images on the CPU: the calls would exceed the limit, so one pass each.
        monkeypatch.setattr(cyclegan, "CPU_SHARED_CALL_PIXELS", shared_pixels)
    ours, reference = _pair(model, train)
    # The instance-norm cases take the batched passes, batch norm the one-at-a-time passes.
    assert per_sample(ours.G_ab) == per_sample(ours.D_b) == (model.get("norm") != "batch")
    calls = []
    ours.G_ab.register_forward_hook(lambda net, args, out: calls.append(len(args[0])))
    for batch in _batches(train["batch_size"]):
        got, want = ours.step(batch), reference.step(batch)
        assert got.keys() >= want.keys()
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # G_ab's translation and identity passes share one call only where the batches are small.
    n = train["batch_size"]
    shared = per_sample(ours.G_ab) and ours.lambda_idt > 0 and not shared_pixels
    assert calls[:2] == ([2 * n, n] if shared else [n, n]), calls
    optimizers = (reference.optimizer_G, reference.optimizer_D)
    for name, ref_net in (("G_ab", reference.G_ab), ("G_ba", reference.G_ba),
                          ("D_a", reference.D_a), ("D_b", reference.D_b)):
        ours_params = dict(ours.nets[name].named_parameters())
        for pname, want in ref_net.named_parameters():
            got = ours_params[pname].detach().cpu().contiguous()
            # A conv bias right before an affine-free instance norm has a zero gradient in exact
            # arithmetic: its fp32 gradient is rounding noise (Adam's second moment ~1e-15),
            # which Adam scales to +-lr per step, so it may differ by up to 2 steps x 2 lr.
            # Every parameter with a real gradient must match.
            state = next(opt.state[want] for opt in optimizers if want in opt.state)
            noise = state["exp_avg_sq"].max().item() < 1e-12
            tol = 4 * LR + 1e-6 if noise else 1e-6
            assert torch.allclose(got, want.detach(), rtol=1e-4, atol=tol), f"{name}.{pname}"
