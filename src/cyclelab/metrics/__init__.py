"""Metrics of translated images, looked up by the names ``params.yaml`` lists.

Two kinds, one registry (:data:`METRICS`, :mod:`cyclelab.metric_registry`):

- *distribution* metrics compare a set of translated images with the real test set of the target
  domain through Inception features: ``fid`` (:mod:`.fid`) and ``kid`` (:mod:`.kid`). The real
  side comes from :func:`reference_stats`, computed once by the reference stage and saved with
  :func:`save_stats`. Every FID is tied to the sha256 of the network that made its features.
  ``is`` and ``gms`` (:mod:`.inception_score`) read the translated set's class logits from a
  second, user-supplied network; without them they return nothing (see
  :func:`~.inception_score.unavailable_reason`).
- *paired* metrics compare two images pixel by pixel: ``ssim`` and ``psnr`` (:mod:`.similarity`).

Adding a metric is one :func:`register` call in :mod:`cyclelab.metric_registry`, naming its
function and its report columns.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cyclelab.metric_registry import DISTRIBUTION, METRICS, PAIRED, Metric, check_names, register

# Eager, and torch-free: the submodule shares the name of its function, which importing the
# submodule later would otherwise shadow on this package.
from cyclelab.metrics.inception_score import (
    LOGITS_KEY,
    class_logits,
    geometric_mean_score,
    inception_score,
    load_is_network,
    unavailable_reason,
)

if TYPE_CHECKING:
    from cyclelab.config import EvalConfig

# The public names of the submodules, imported on first use (PEP 562): a stage that needs only
# the torch-free parts (cyclelab.metrics.uncertainty for compare and report) does not pay for
# torch, onnxruntime and scipy at start-up.
_LAZY = {
    "fid": ("fid_from_stats", "frechet_distance", "load_stats", "reference_stats", "save_stats"),
    "inception": ("InceptionNet", "extract_features", "load_inception"),
    "kid": ("kernel_inception_distance",),
    "similarity": ("PSNR_CAP_DB", "psnr", "ssim"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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


__all__ = ["DISTRIBUTION", "PAIRED", "METRICS", "Metric", "register", "check_names",
           "compute_distribution", "compute_paired", "LOGITS_KEY", "class_logits",
           "geometric_mean_score", "inception_score", "load_is_network", "unavailable_reason",
           *_MODULE_OF]
