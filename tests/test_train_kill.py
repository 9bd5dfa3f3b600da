"""Unkillable training: the real train stage, SIGKILLed in the middle of an epoch and started
again, ends with the weights of an uninterrupted run (bit for bit on the CPU); the features of
issue 10 run through the stage on tiny params."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY, write_params
from PIL import Image

pytestmark = pytest.mark.slow

STAGE = REPO / "pipeline" / "train.py"


def workspace(root: Path, train: dict | None = None, variants: dict | None = None,
              finetunes: dict | None = None) -> Path:
    """A folder with tiny prepared images and params (no DVC: the stage script itself)."""
    rng = np.random.default_rng(0)
    for split, n in (("trainA", 24), ("trainB", 24), ("testA", 2), ("testB", 2)):
        folder = root / "data" / "prepared" / split
        folder.mkdir(parents=True)
        for i in range(n):
            # Smooth 4x4 colour blocks scaled up: like images, unlike noise.
            block = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(np.kron(block, np.ones((8, 8, 1), np.uint8))).save(
                folder / f"{i:03d}.png")
    raw = {**TINY, "train": {**TINY["train"], "epochs": 3, "max_steps_per_epoch": 0,
                             "checkpoint_minutes": 0.0005, "log_every": 1000, **(train or {})},
           "variants": variants or {"baseline": {"init": "random"}}, "finetunes": finetunes or {}}
    write_params(root / "params.yaml", raw)
    return root


def env() -> dict:
    out = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out.pop("MLFLOW_TRACKING_URI", None)
    out.pop("DVC_ROOT", None)
    return out


def train(root: Path, variant: str = "baseline") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STAGE), "--variant", variant], cwd=root,
                          env=env(), capture_output=True, text=True, timeout=300)


def weights(root: Path, variant: str = "baseline") -> dict[str, dict]:
    folder = root / "data" / "models" / variant / "s0"
    return {f.stem: torch.load(f) for f in sorted(folder.glob("*.pt"))}


def test_sigkill_mid_epoch_then_rerun_equals_an_uninterrupted_run(tmp_path):
    full = workspace(tmp_path / "full")
    assert train(full).returncode == 0

    killed = workspace(tmp_path / "killed")
    ckpt = killed / "data" / "checkpoints" / "baseline" / "s0.pt"
    proc = subprocess.Popen([sys.executable, str(STAGE), "--variant", "baseline"], cwd=killed,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    state = None
    while proc.poll() is None and time.monotonic() < deadline:
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=False)
            if state["epoch"] >= 0 and state["partial"]:  # inside epoch 2 or 3
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "data" / "models" / "baseline").exists()

    rerun = train(killed)
    assert rerun.returncode == 0, rerun.stderr
    assert "steps into epoch" in rerun.stdout
    got, want = weights(killed), weights(full)
    assert got.keys() == want.keys() == {"G_ab", "G_ba", "D_a", "D_b"}
    for name in want:
        for key, tensor in want[name].items():
            assert torch.equal(got[name][key], tensor), f"{name}.{key}"


def test_stage_with_ema_accuracy_and_fine_tuning_from_another_variant(tmp_path, monkeypatch):
    # In this process (the stage's main through run_stage): no second torch import.
    import importlib

    from cyclelab.stage import run_stage

    root = workspace(tmp_path, train={"epochs": 1, "max_steps_per_epoch": 2, "ema": 0.9,
                                      "pool": "seed001", "cache_draw": "contiguous",
                                      "crop_size": 24, "load_size": 32, "flip": False},
                     variants={"phase1": {"init": "random", "train": {"lambda_identity": 0.0}}},
                     finetunes={"phase2": {"init": "phase1",
                                           "train": {"lambda_identity": 10.0,
                                                     "identity_weight": "absolute"}}})
    monkeypatch.chdir(root)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)
    stage = importlib.import_module("pipeline.train")

    def train_here(variant: str, *flags: str) -> int:
        return run_stage("train", stage.main, stage.__doc__, stage.add_arguments,
                         argv=["--variant", variant, *flags])

    assert train_here("phase2", "--all-seeds") == 2  # phase1's weights are missing: exit 2
    assert train_here("phase1") == 0
    assert train_here("phase2", "--all-seeds") == 0  # the finetune stage's command
    exported = weights(root, "phase2")
    assert {"G_ab", "G_ba", "G_ab_raw", "G_ba_raw", "D_a", "D_b"} == set(exported)
    assert any(not torch.equal(exported["G_ab"][k], exported["G_ab_raw"][k])
               for k in exported["G_ab"])
    header = (root / "reports" / "plots" / "train" / "phase2" / "s0.csv").read_text().split("\n")[0]
    assert "acc_D_real" in header and "acc_D_fake" in header
    meta = (root / "data" / "models" / "phase2" / "s0" / "meta.json").read_text()
    assert '"generators": "ema"' in meta and '"precision": "fp32"' in meta


def test_keep_every_keeps_the_generators_of_every_kth_epoch(tmp_path, monkeypatch, capsys):
    """train.keep_every: data/models/<run>/kept/epoch_NNN/{G_ab,G_ba}.pt after every k-th
    epoch (the last one equal to the final weights), listed in meta.json; the setting does not
    change the training fingerprint, so a finished run resumes and only re-selects."""
    import importlib

    from cyclelab.stage import run_stage

    root = workspace(tmp_path, train={"epochs": 2, "max_steps_per_epoch": 2, "keep_every": 1})
    monkeypatch.chdir(root)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)
    stage = importlib.import_module("pipeline.train")
    models = root / "data" / "models" / "baseline" / "s0"

    def train_with(keep_every: int) -> dict:
        raw = yaml.safe_load((root / "params.yaml").read_text())
        raw["train"]["keep_every"] = keep_every
        write_params(root / "params.yaml", raw)
        assert run_stage("train", stage.main, stage.__doc__, stage.add_arguments,
                         argv=["--variant", "baseline"]) == 0
        return json.loads((models / "meta.json").read_text())

    assert train_with(1)["kept_epochs"] == [1, 2]
    kept = {f"{epoch.name}/{f.stem}": torch.load(f) for epoch in (models / "kept").iterdir()
            for f in epoch.glob("*.pt")}
    assert set(kept) == {"epoch_001/G_ab", "epoch_001/G_ba", "epoch_002/G_ab", "epoch_002/G_ba"}
    final = torch.load(models / "G_ab.pt")
    assert all(torch.equal(kept["epoch_002/G_ab"][k], v) for k, v in final.items())
    assert any(not torch.equal(kept["epoch_001/G_ab"][k], v) for k, v in final.items())
    capsys.readouterr()
    assert train_with(2)["kept_epochs"] == [2]  # resumed, not retrained
    assert "resuming from" in capsys.readouterr().out
    assert [d.name for d in (models / "kept").iterdir()] == ["epoch_002"]
    assert train_with(0)["kept_epochs"] == [] and not (models / "kept").exists()


def test_a_finetune_trains_every_seed_under_torchrun_with_two_gloo_processes(tmp_path,
                                                                             monkeypatch):
    """The finetune stage's command with ``train.gpus: 2``: the stage relaunches itself under
    torchrun (2 gloo processes on the CPU) and trains both seeds in one process group, each
    from its parent's weights of that seed; only rank 0 writes and prints."""
    root = workspace(tmp_path, train={"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 2,
                                      "pool_size": 0},
                     variants={"base": {"init": "random"}},
                     finetunes={"ft": {"init": "base", "train": {"gpus": 2}}})
    params = root / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["study"] = {"seeds": [0, 1]}
    write_params(params, raw)
    import importlib

    from cyclelab.stage import run_stage

    monkeypatch.chdir(root)  # the parent's seeds in this process: no second torch import
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)
    stage = importlib.import_module("pipeline.train")
    for seed in ("0", "1"):
        assert run_stage("train", stage.main, stage.__doc__, stage.add_arguments,
                         argv=["--variant", "base", "--seed", seed]) == 0
    proc = subprocess.run([sys.executable, str(STAGE), "--variant", "ft", "--all-seeds"],
                          cwd=root, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        assert proc.stdout.count(f"train@ft-{seed} epoch 1/1:") == 1, proc.stdout
        meta = json.loads((root / f"data/models/ft/s{seed}/meta.json").read_text())
        assert (meta["init"], meta["world_size"]) == ("base", 2)
