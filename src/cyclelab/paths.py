"""Where stages read and write: the same names ``dvc.yaml`` declares as deps and outs."""

from __future__ import annotations

from pathlib import Path

SPLITS = ("trainA", "trainB", "testA", "testB")  # the CycleGAN folder layout, every stage
# What prepare writes: the raw splits plus valA/valB, carved from trainA/trainB
# (data.val_fraction). Every choice made during training reads val, only evaluate and
# reference read test.
PREPARED_SPLITS = ("trainA", "trainB", "valA", "valB", "testA", "testB")
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
# Beside the split folders, raw and prepared: class labels (split, domain, file, label).
LABELS_FILE = "labels.csv"
# Beside the prepared split folders: one row per input file, and prepare's counts (outputs,
# skips, duplicates).
MANIFEST_FILE = "manifest.csv"
SUMMARY_FILE = "summary.json"
MANIFEST = PREPARED / MANIFEST_FILE
PREPARE_SUMMARY = PREPARED / SUMMARY_FILE
CLASSIFIER = Path("data/classifier")  # <domain>/model.pt, meta.json
REFERENCE = Path("data/reference")
CHECKPOINTS = Path("data/checkpoints")
REPORTS = Path("reports")
METRICS = REPORTS / "metrics"
SEED_METRICS = REPORTS / "seeds"
PLOTS = REPORTS / "plots"
SAMPLES = REPORTS / "samples"


def ae_dir(domain: str) -> Path:
    """Autoencoder weights and the generator extracted from it."""
    return Path("data/ae") / domain


def init_dir(variant: str) -> Path:
    """A variant's starting generators (stage ``init@<variant>``; train@ loads them)."""
    return Path("data/init") / variant


def run_name(variant: str, seed: int) -> str:
    """One replicate of a variant: ``<variant>/s<seed>`` (a folder level under each output)."""
    return f"{variant}/s{seed}"


def model_dir(variant: str, seed: int) -> Path:
    """Final generators and discriminators of one variant and seed."""
    return Path("data/models") / run_name(variant, seed)


def checkpoint(variant: str, seed: int) -> Path:
    """The resumable training checkpoint of one variant and seed (DVC ``persist: true``)."""
    return CHECKPOINTS / variant / f"s{seed}.pt"


KEPT = "kept"  # data/models/<run>/kept/epoch_NNN/: train.keep_every's generators


def kept_staging(variant: str, seed: int, fingerprint: str) -> Path:
    """Where a run's ``train.keep_every`` generators wait until the run ends: beside its
    checkpoint (outside DVC's outputs, so a killed and resumed run keeps the earlier ones), one
    folder per training fingerprint."""
    return CHECKPOINTS / variant / f"s{seed}_kept_{fingerprint}"


def kept_stagings(variant: str, seed: int) -> list[Path]:
    """Every :func:`kept_staging` folder of one variant and seed, whatever its fingerprint."""
    return sorted((CHECKPOINTS / variant).glob(f"s{seed}_kept_*"))


def translated_dir(variant: str, seed: int) -> Path:
    """Translated test images (and their Inception features) of one variant and seed."""
    return Path("data/translated") / run_name(variant, seed)


def seed_metrics(variant: str, seed: int) -> Path:
    """Scores of one variant and seed (DVC metrics); ``METRICS/<variant>.json`` aggregates."""
    return SEED_METRICS / variant / f"s{seed}.json"

