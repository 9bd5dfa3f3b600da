"""Shared fixtures: tiny params (32 px, ngf 8, two steps) that most tests build objects from.

``make test`` runs the suite on every core (pytest-xdist, ``-n auto --dist loadgroup``): each
worker computes on one thread, the long end-to-end tests start first, and the modules that share
one study carry an ``xdist_group`` mark so that one worker builds it once.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from cyclelab import config

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Before torch loads (cyclelab.config does not import it): the workers share the cores, and
    # the stages the tests start inherit the setting.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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


def pytest_collection_modifyitems(config, items) -> None:
    """The slow (end-to-end) tests first, in their order: with the scheduler's
    ``--no-loadscope-reorder`` the longest work starts at once instead of last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if getattr(config.option, "loadgroup", False):
        # pytest-xdist 3.8 names each item's group by setting ``item._nodeid`` (the ``@group``
        # suffix its loadgroup scheduler reads), which pytest 9 no longer reads: the modules
        # sharing a study ran on both workers and each built it (seen with -v). Name them here.
        for item in items:
            groups = "_".join(sorted({str(m.args[0]) for m in item.iter_markers("xdist_group")}))
            if groups and not item.nodeid.endswith(f"@{groups}"):
                _set_nodeid(item, f"{item.nodeid}@{groups}")


def _set_nodeid(item, nodeid: str) -> None:
    """``item``'s id as pytest 9 keeps it (``_id``, a NodeId) or pytest 8 (``_nodeid``)."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest 8
        item._nodeid = nodeid
    else:
        item._id = NodeId.parse(nodeid)
