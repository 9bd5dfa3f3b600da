"""Kernel Inception distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared maximum mean discrepancy between two feature sets
under the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over random subsets of
equal size as in the paper's code and torch-fidelity. Unlike FID it is unbiased in the number of
images, so values from small test sets can be compared; it can be slightly negative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cyclelab.errors import DataError

if TYPE_CHECKING:
    from cyclelab.config import EvalConfig


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The n×m Gram matrix (x·y / d + 1)³ of rows of x (n×d) and y (m×d)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equal-size samples (m×d each) under :func:`polynomial_kernel`.

    Within-set sums leave out the diagonal (k(x_i, x_i) is not an independent pair); the
    cross sum keeps every pair because x and y are independent samples.
    """
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / m**2)


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 20,
    subset_size: int = 50,
    seed: int = 0,
) -> tuple[float, float]:
    """KID ``(mean, std)`` over ``subsets`` random subsets of both sets, float64.

    Each subset has ``min(subset_size, n1, n2)`` features drawn without replacement by a
    ``numpy.random.default_rng(seed)``, so a run is reproducible; std is over subsets (ddof 0).
    """
    features1 = np.asarray(features1, dtype=np.float64)
    features2 = np.asarray(features2, dtype=np.float64)
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"features must be N×D with equal D: {features1.shape}, {features2.shape}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    size = min(subset_size, len(features1), len(features2))
    if size < 2:
        raise DataError(f"KID needs at least 2 images per set, got {len(features1)} and "
                        f"{len(features2)}; check eval.max_images and eval.kid_subset_size")
    rng = np.random.default_rng(seed)
    mmds = np.array([
        mmd2_unbiased(features1[rng.choice(len(features1), size, replace=False)],
                      features2[rng.choice(len(features2), size, replace=False)])
        for _ in range(subsets)
    ])
    return float(mmds.mean()), float(mmds.std())


def kid_score(real: dict[str, Any], fake: dict[str, Any], cfg: EvalConfig,
              seed: int) -> dict[str, float]:
    """The registered ``kid`` (:mod:`cyclelab.metric_registry`): mean and std over
    ``cfg.kid_subsets`` subsets of the features that both statistics carry."""
    if "features" not in real or "features" not in fake:
        raise DataError("KID needs the features themselves, and the statistics lack them; "
                        "rerun the reference stage (dvc repro)")
    mean, std = kernel_inception_distance(real["features"], fake["features"],
                                          subsets=cfg.kid_subsets,
                                          subset_size=cfg.kid_subset_size, seed=seed)
    return {"kid_mean": mean, "kid_std": std}
