"""Where stages read and write: the same names ``dvc.yaml`` declares as deps and outs."""

from __future__ import annotations

import hashlib
from pathlib import Path

SPLITS = ("trainA", "trainB", "testA", "testB")  # the CycleGAN folder layout, every stage
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
MANIFEST = PREPARED / "manifest.csv"
REFERENCE = Path("data/reference")
CHECKPOINTS = Path("data/checkpoints")
REPORTS = Path("reports")
METRICS = REPORTS / "metrics"
PLOTS = REPORTS / "plots"
SAMPLES = REPORTS / "samples"


def ae_dir(domain: str) -> Path:
    """Autoencoder weights and the generator extracted from it."""
    return Path("data/ae") / domain


def model_dir(variant: str) -> Path:
    """Final generators and discriminators of one variant."""
    return Path("data/models") / variant


def translated_dir(variant: str) -> Path:
    """Translated test images of one variant."""
    return Path("data/translated") / variant


def file_digest(*paths: str | Path) -> str:
    """sha256 over files (missing ones count as empty): ties checkpoints to their inputs."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]
