"""Metrics of translated images, looked up by the names ``params.yaml`` lists.

Two kinds, one registry (:data:`METRICS`):

- *distribution* metrics compare a set of translated images with the real test set of the target
  domain through Inception features: ``fid`` (:mod:`.fid`) and ``kid`` (:mod:`.kid`). The real
  side comes from :func:`reference_stats`, computed once by the reference stage and saved with
  :func:`save_stats`. Every FID is tied to the sha256 of the network that made its features.
  ``is`` and ``gms`` (:mod:`.inception_score`) read the translated set's class logits from a
  second, user-supplied network; without them they return nothing (see
  :func:`~.inception_score.unavailable_reason`).
- *paired* metrics compare two images pixel by pixel: ``ssim`` and ``psnr`` (:mod:`.similarity`).

Adding a metric is one function decorated with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cyclelab.config import EvalConfig
from cyclelab.errors import ConfigError, DataError
from cyclelab.metrics.fid import (
    fid_from_stats,
    frechet_distance,
    load_stats,
    reference_stats,
    save_stats,
)
from cyclelab.metrics.inception import InceptionNet, extract_features, load_inception
from cyclelab.metrics.inception_score import (
    LOGITS_KEY,
    class_logits,
    geometric_mean_score,
    inception_score,
    load_is_network,
    unavailable_reason,
)
from cyclelab.metrics.kid import kernel_inception_distance
from cyclelab.metrics.similarity import PSNR_CAP_DB, psnr, ssim

DISTRIBUTION = "distribution"
PAIRED = "paired"


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``fn`` of a distribution metric: ``(real_stats, fake_stats, cfg, seed) -> {key: value}``;
    of a paired metric: ``(img_a, img_b) -> value`` for two uint8 H×W×3 images.
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    description: str


METRICS: dict[str, Metric] = {}


def register(name: str, kind: str, description: str) -> Callable[[Callable], Callable]:
    """Decorator adding ``fn`` to :data:`METRICS` under ``name``."""
    if kind not in (DISTRIBUTION, PAIRED):
        raise ValueError(f"metric kind must be {DISTRIBUTION!r} or {PAIRED!r}, got {kind!r}")

    def add(fn: Callable) -> Callable:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = Metric(name=name, kind=kind, fn=fn, description=description)
        return fn

    return add


@register("fid", DISTRIBUTION, "Fréchet Inception distance (lower is better)")
def _fid(real: dict, fake: dict, cfg: EvalConfig, seed: int) -> dict[str, float]:
    return {"fid": fid_from_stats(real, fake)}


@register("kid", DISTRIBUTION, "kernel Inception distance, mean and std over subsets (lower is "
          "better)")
def _kid(real: dict, fake: dict, cfg: EvalConfig, seed: int) -> dict[str, float]:
    if "features" not in real or "features" not in fake:
        raise DataError("KID needs the features themselves, and the statistics lack them; "
                        "rerun the reference stage (dvc repro)")
    mean, std = kernel_inception_distance(real["features"], fake["features"],
                                          subsets=cfg.kid_subsets,
                                          subset_size=cfg.kid_subset_size, seed=seed)
    return {"kid_mean": mean, "kid_std": std}


@register("is", DISTRIBUTION, "Inception Score, mean and std over eval.is_splits parts (higher "
          "is better); needs eval.is_weights")
def _is(real: dict, fake: dict, cfg: EvalConfig, seed: int) -> dict[str, float]:
    if LOGITS_KEY not in fake:
        return {}  # unavailable: unavailable_reason(cfg) says why
    mean, std = inception_score(fake[LOGITS_KEY], splits=cfg.is_splits)
    return {"is": mean, "is_std": std}


@register("gms", DISTRIBUTION, "geometric mean score sqrt(FID / IS) of seeds/004 (lower is "
          "better); needs eval.is_weights")
def _gms(real: dict, fake: dict, cfg: EvalConfig, seed: int) -> dict[str, float]:
    if LOGITS_KEY not in fake:
        return {}
    is_mean, _ = inception_score(fake[LOGITS_KEY], splits=cfg.is_splits)
    return {"gms": geometric_mean_score(fid_from_stats(real, fake), is_mean)}


register("ssim", PAIRED, "structural similarity, 0..1 (higher is better)")(ssim)
register("psnr", PAIRED, f"peak signal-to-noise ratio in dB, capped at {PSNR_CAP_DB:g} "
         "(higher is better)")(psnr)


def check_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; ConfigError naming ``eval.metrics`` if one is not registered."""
    names = list(names)
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"eval.metrics: unknown metric {name!r}; available: "
                              f"{', '.join(METRICS)}")
    return names


def compute_distribution(
    names: Iterable[str], real: dict, fake: dict, cfg: EvalConfig, seed: int = 0
) -> dict[str, float]:
    """The distribution metrics among ``names`` (paired ones are skipped), merged in one dict.

    ``real``/``fake``: :func:`reference_stats` of the real test set and of the translated set.
    """
    results: dict[str, float] = {}
    for name in check_names(names):
        metric = METRICS[name]
        if metric.kind == DISTRIBUTION:
            results.update(metric.fn(real, fake, cfg, seed))
    return results


def compute_paired(
    names: Iterable[str], images_a: Sequence[np.ndarray], images_b: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-pair values (float64, one per pair) of the paired metrics among ``names``.

    Distribution metrics are skipped. ``images_a[i]`` is compared with ``images_b[i]``.
    """
    if len(images_a) != len(images_b):
        raise ValueError(f"paired metrics need equal counts, got {len(images_a)} and "
                         f"{len(images_b)}")
    return {
        name: np.array([METRICS[name].fn(a, b) for a, b in zip(images_a, images_b, strict=True)],
                       dtype=np.float64)
        for name in check_names(names) if METRICS[name].kind == PAIRED
    }


__all__ = [
    "DISTRIBUTION", "PAIRED", "METRICS", "Metric", "register", "check_names",
    "compute_distribution", "compute_paired", "InceptionNet", "load_inception",
    "extract_features", "reference_stats", "frechet_distance", "fid_from_stats", "save_stats",
    "load_stats", "kernel_inception_distance", "ssim", "psnr", "PSNR_CAP_DB", "LOGITS_KEY",
    "load_is_network", "class_logits", "inception_score", "geometric_mean_score",
    "unavailable_reason",
]
