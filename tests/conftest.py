"""Shared fixtures: tiny params (32 px, ngf 8, two steps) that most tests build objects from."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cyclelab import config

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

TINY = {
    "seed": 0,
    "device": "cpu",
    # val_fraction 0.2 holds out 2 of the 12 training images per domain: FID needs 2.
    "data": {"dataset": "digits", "image_size": 32, "val_fraction": 0.2,
             "digits": {"train_per_domain": 12, "test_per_domain": 6}},
    "model": {"n_blocks": 1, "ngf": 8, "ndf": 8},
    "ae": {"epochs": 1, "batch_size": 4, "latent_dim": 8, "enc_channels": 8},
    "train": {"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 2, "num_samples": 2,
              "log_every": 1},
    "eval": {"max_images": 4, "batch_size": 4, "kid_subset_size": 4, "kid_subsets": 2},
    "variants": {"baseline": {"init": "random"}, "ae_init": {"init": "ae"}},
}


@pytest.fixture
def tiny_raw() -> dict:
    """A deep copy of the tiny params as plain data (edit freely)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def tiny_params(tiny_raw) -> config.Config:
    """The tiny params, validated."""
    return config.from_dict(tiny_raw)


def write_params(path: Path, raw: dict) -> Path:
    """Write ``raw`` as a params file (floats keep their YAML number form)."""
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
