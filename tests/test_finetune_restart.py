"""``train.restart_optimizers``: what a finetune's optimisers start from (seeds/002's second
phase). ``fresh``: zero Adam moments; ``parent``: the parent's final Adam state from its training
checkpoint. Either way the learning rate is the finetune's own, not the parent's decayed one."""

from __future__ import annotations

import contextlib
import copy
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from cyclelab import config, paths
from cyclelab.errors import ConfigError
from cyclelab.tracking import NullRun
from cyclelab.training import checkpoint
from cyclelab.training import run as training_run
from tests.conftest import TINY

PARENT_LR, FINETUNE_LR = 2.0e-4, 1.0e-4


def params(restart: str) -> config.Config:
    """Tiny params: ``phase1`` (cycle loss only, 2 epochs, linear decay to 0), and ``phase2``
    from its weights with the identity loss, its own learning rate and ``restart``."""
    raw = copy.deepcopy(TINY)
    raw["train"].update(epochs=2, lr=PARENT_LR, lr_d=PARENT_LR, checkpoint_minutes=0.0)
    raw["variants"] = {"phase1": {"init": "random", "train": {"lambda_identity": 0.0}}}
    raw["finetunes"] = {"phase2": {"init": "phase1", "train": {
        "epochs": 1, "lr": FINETUNE_LR, "lr_d": FINETUNE_LR, "lambda_identity": 1.0,
        "restart_optimizers": restart}}}
    return config.from_dict(raw)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Tiny prepared images in a fresh folder, the working directory; no MLflow."""
    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB"):
        folder = tmp_path / "data" / "prepared" / split
        folder.mkdir(parents=True)
        for i in range(6):
            block = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(np.kron(block, np.ones((8, 8, 1), np.uint8))).save(
                folder / f"{i:03d}.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training_run, "stage_run",
                        lambda *args, **kwargs: contextlib.nullcontext(NullRun()))
    return tmp_path


def train_parent(cfg: config.Config) -> dict:
    """Train ``phase1`` seed 0; its final checkpoint's optimiser states."""
    training_run.TrainingRun(cfg, "phase1", 0).train()
    return checkpoint.load_state(paths.checkpoint("phase1", 0))["optimizers"]


def first_epoch_lr(name: str) -> float:
    with open(paths.PLOTS / "train" / name / "s0.csv", newline="") as handle:
        return float(next(csv.DictReader(handle))["lr"])


def test_parent_restart_starts_from_the_parents_final_adam_state(workspace):
    cfg = params("parent")
    saved = train_parent(cfg)
    assert saved["G"]["param_groups"][0]["lr"] == 0.0  # the parent's rate decayed to 0
    finetune = training_run.TrainingRun(cfg, "phase2", 0)
    for name in ("G", "D"):
        own = finetune.gan.optimizers[name].state_dict()
        assert own["state"].keys() == saved[name]["state"].keys() and own["state"]
        for index, moments in saved[name]["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(own["state"][index][key], moments[key]), (name, index, key)
        assert [g["lr"] for g in own["param_groups"]] == [FINETUNE_LR]
    finetune.train()
    assert first_epoch_lr("phase2") == pytest.approx(FINETUNE_LR)


def test_fresh_restart_starts_with_empty_optimisers(workspace):
    cfg = params("fresh")
    assert train_parent(cfg)["G"]["state"]
    finetune = training_run.TrainingRun(cfg, "phase2", 0)
    for opt in finetune.gan.optimizers.values():
        assert opt.state_dict()["state"] == {}
        assert [g["lr"] for g in opt.param_groups] == [FINETUNE_LR]
    finetune.train()
    assert first_epoch_lr("phase2") == pytest.approx(FINETUNE_LR)


def test_default_restart_stays_out_of_the_fingerprint(workspace, monkeypatch):
    """Runs that leave the key at fresh keep the fingerprints of their checkpoints made before
    it existed (they resume); parent changes it."""
    seen = []
    monkeypatch.setattr(config, "fingerprint", lambda *parts: seen.append(parts[2]) or "f")
    cfg = params("fresh")
    training_run.TrainingRun(cfg, "phase1", 0).fingerprint()
    train_parent(params("parent"))
    training_run.TrainingRun(params("parent"), "phase2", 0).fingerprint()
    assert "restart_optimizers" not in seen[0]
    assert seen[-1]["restart_optimizers"] == "parent"


def test_parent_restart_refuses_a_missing_or_foreign_checkpoint(workspace):
    cfg = params("parent")
    train_parent(cfg)
    ckpt = paths.checkpoint("phase1", 0)
    d_a = paths.model_dir("phase1", 0) / "D_a.pt"
    weights = torch.load(d_a)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in weights.items()}, d_a)
    with pytest.raises(checkpoint.CheckpointError, match="a later or interrupted run"):
        training_run.TrainingRun(cfg, "phase2", 0)
    torch.save(weights, d_a)
    ckpt.unlink()
    with pytest.raises(checkpoint.CheckpointError,
                       match=rf"{ckpt}: missing; .*rerun train@phase1-0, or set "
                             r"train.restart_optimizers: fresh"):
        training_run.TrainingRun(cfg, "phase2", 0)


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["train"].update(restart_optimizers="parent"),
     "train.restart_optimizers: got 'parent', but variant phase1 has no parent"),
    (lambda raw: raw["variants"]["phase1"]["train"].update(restart_optimizers="parent"),
     "variants.phase1.train.restart_optimizers: got 'parent'"),
    (lambda raw: raw["finetunes"]["phase2"]["train"].update(optimizer_d="sgd"),
     "finetunes.phase2: train.restart_optimizers parent continues phase1's adam state, but "
     "train.optimizer_d is sgd"),
    (lambda raw: raw["finetunes"]["phase2"]["train"].update(restart_optimizers="latest"),
     "finetunes.phase2.train.restart_optimizers: got 'latest', allowed: fresh, parent"),
])
def test_bad_restarts_are_one_line_naming_the_key(edit, message):
    raw = config.to_dict(params("parent"))
    raw["finetunes"] = {"phase2": {"init": "phase1", "train": {"restart_optimizers": "parent"}}}
    raw["variants"] = {"phase1": {"init": "random", "train": {}}}
    edit(raw)
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
