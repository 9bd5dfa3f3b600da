"""The metric registry: every metric's name, kind, computation and report columns, in one place.

Adding a metric is one :func:`register` call here, naming the function that computes it (a
``"module:function"`` path, imported on first use) and the columns it adds to the report. From
the registry come ``eval.metrics``' allowed names (:data:`METRIC_NAMES`), the report's columns
(:func:`report_columns`), the scores the report tests between variants (:func:`compared`) and
the reference stage's renaming of scores into lines (``fid_ci95`` -> ``fid_identity_ci95``).

This module imports neither NumPy nor torch, nor any other part of the package but
:mod:`cyclelab.errors`: the config schema reads the names at every stage's start-up, and the
metrics themselves (:mod:`cyclelab.metrics`) import the config.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cyclelab.errors import ConfigError

DISTRIBUTION = "distribution"
PAIRED = "paired"


@dataclass(frozen=True)
class Column:
    """One column of the report's metrics table (per direction).

    ``key``: the score's key in the metrics JSON; ``label``: its header, the arrow saying which
    way is better; ``fmt``: its format; ``position``: its place, left to right; ``interval``:
    shown with its 95 % CI (else with ± std over seeds).
    """

    key: str
    label: str
    fmt: str
    position: int
    interval: bool = False


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``compute`` (``"module:function"``) of a distribution metric:
    ``(real_stats, fake_stats, cfg, seed) -> {key: value}``; of a paired metric:
    ``(img_a, img_b) -> value`` for two uint8 H×W×3 images. ``compared``: the report draws it
    per variant and tests differences between variants in it, lower being better (over
    per-seed values; with fewer than three seeds by a paired bootstrap over the features,
    which :mod:`cyclelab.metrics.uncertainty` knows for ``fid`` and ``kid``).
    """

    name: str
    kind: str
    description: str
    compute: str
    columns: tuple[Column, ...] = ()
    compared: bool = False

    @property
    def fn(self) -> Callable[..., Any]:
        """The computation, imported on first use."""
        module, _, function = self.compute.partition(":")
        return getattr(importlib.import_module(module), function)


METRICS: dict[str, Metric] = {}
# Scores the data decides, not eval.metrics (label accuracy where the data has labels).
DATA_COLUMNS: list[Column] = []


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS`."""
    if metric.kind not in (DISTRIBUTION, PAIRED):
        raise ValueError(f"metric kind must be {DISTRIBUTION!r} or {PAIRED!r}, got "
                         f"{metric.kind!r}")
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    METRICS[metric.name] = metric
    return metric


def check_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; ConfigError naming ``eval.metrics`` if one is not registered."""
    names = list(names)
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"eval.metrics: unknown metric {name!r}; available: "
                              f"{', '.join(METRICS)}")
    return names


def report_columns() -> tuple[Column, ...]:
    """Every registered metric's columns and :data:`DATA_COLUMNS`, left to right."""
    columns = [c for metric in METRICS.values() for c in metric.columns] + DATA_COLUMNS
    return tuple(sorted(columns, key=lambda c: c.position))


def compared() -> tuple[str, ...]:
    """The metrics whose differences between variants the report tests."""
    return tuple(name for name, metric in METRICS.items() if metric.compared)


_M = "cyclelab.metrics."
register(Metric("fid", DISTRIBUTION, "Fréchet Inception distance (lower is better)",
                f"{_M}fid:fid_score", compared=True, columns=(
                    Column("fid", "FID ↓", "{:.1f}", 10, interval=True),
                    # eval.fid_cycle: the reconstructions against the source domain ...
                    Column("fid_rec", "FID rec ↓", "{:.1f}", 50),
                    # ... and seeds/000's pairs: distance from the input, not quality
                    Column("fid_real_fake", "FID real–fake", "{:.1f}", 100),
                    Column("fid_rec_fake", "FID rec–fake", "{:.1f}", 110))))
register(Metric("kid", DISTRIBUTION, "kernel Inception distance, mean and std over subsets "
                "(lower is better)", f"{_M}kid:kid_score", compared=True,
                columns=(Column("kid", "KID ↓", "{:.4f}", 20, interval=True),)))
register(Metric("is", DISTRIBUTION, "Inception Score, mean and std over eval.is_splits parts "
                "(higher is better); needs eval.is_weights", f"{_M}inception_score:is_score",
                columns=(Column("is", "IS ↑", "{:.2f}", 30),)))
register(Metric("gms", DISTRIBUTION, "geometric mean score sqrt(FID / IS) of seeds/004 (lower "
                "is better); needs eval.is_weights", f"{_M}inception_score:gms_score",
                columns=(Column("gms", "GMS ↓", "{:.3f}", 40),)))
register(Metric("ssim", PAIRED, "structural similarity, 0..1 (higher is better)",
                f"{_M}similarity:ssim", columns=(
                    Column("ssim", "SSIM ↑", "{:.3f}", 60),
                    Column("ssim_cycle", "cycle SSIM ↑", "{:.3f}", 70),
                    Column("ssim_rec_fake", "SSIM rec–fake", "{:.3f}", 120))))
register(Metric("psnr", PAIRED, "peak signal-to-noise ratio in dB, capped at 100 (higher is "
                "better)", f"{_M}similarity:psnr",
                columns=(Column("psnr_cycle", "cycle PSNR ↑", "{:.2f}", 80),)))
DATA_COLUMNS.append(Column("label_accuracy", "label acc. ↑", "{:.3f}", 90))  # metrics.semantic

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
