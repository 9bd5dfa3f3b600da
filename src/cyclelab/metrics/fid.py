"""Fréchet Inception distance: feature statistics, the distance, and statistics files.

FID = |mu1 − mu2|² + tr(S1) + tr(S2) − 2 tr sqrt(S1 S2)   (Heusel et al. 2017), all in float64.

tr sqrt(S1 S2) is computed without ``scipy.linalg.sqrtm``: S1 S2 = sqrtS1 (sqrtS1 S2) has the
eigenvalues of the symmetric PSD matrix sqrtS1 S2 sqrtS1, so the trace is the sum of the square
roots of that matrix's ``eigvalsh`` (rounding noise set to 0). Symmetric eigensolvers stay real
and stable when the covariances are singular (fewer images than the 2048 feature dimensions),
where ``sqrtm`` returns complex noise that other tools must discard.

Statistics that keep their features (:func:`reference_stats`) and hold fewer images than half
the feature dimensions take an exact shortcut instead: with the centred features over
sqrt(n − 1) as A1, A2, the non-zero eigenvalues of S1 S2 are the squared singular values of
A1 A2ᵀ (n1×n2), so tr sqrt(S1 S2) is that matrix's nuclear norm
(:class:`cyclelab.metrics.uncertainty.FeaturePair`, which the bootstrap CIs use too).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cyclelab.errors import DataError
from cyclelab.io import atomic_path

if TYPE_CHECKING:
    from cyclelab.config import EvalConfig

STATS_KEYS = ("mu", "sigma", "n")
# Statistics that carry their features take the Gram route when neither set holds more than
# 1/LOW_RANK_SHARE as many images as there are features (where it is the cheaper one).
LOW_RANK_SHARE = 2


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D×D, ``np.cov`` with N−1) of N×D features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be N×D, got shape {features.shape}")
    if len(features) < 2:
        raise DataError(f"FID needs at least 2 images, got {len(features)}; check eval.max_images")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def reference_stats(features: np.ndarray, weights_sha256: str = "") -> dict[str, Any]:
    """Statistics of one image set: ``mu``, ``sigma``, ``n``, ``weights_sha256``, ``features``.

    The features are kept because KID needs them, not just their moments; ``weights_sha256``
    names the network that produced them, so FID refuses to compare sets from different ones.
    """
    features = np.asarray(features, dtype=np.float64)
    mu, sigma = feature_stats(features)
    return {"mu": mu, "sigma": sigma, "n": len(features), "weights_sha256": weights_sha256,
            "features": features}


def _zero_rounding(eigvals: np.ndarray) -> np.ndarray:
    """PSD eigenvalues with rounding noise set to 0.

    Below the tolerance of ``np.linalg.matrix_rank`` (max · dim · eps) an eigenvalue is noise,
    and its square root (~1e-8 for noise ~1e-16) would add up over the ~2000 null directions
    of a covariance of fewer images than features.
    """
    tol = np.abs(eigvals).max(initial=0.0) * len(eigvals) * np.finfo(eigvals.dtype).eps
    return np.where(eigvals > tol, eigvals, 0.0)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix."""
    eigvals, eigvecs = np.linalg.eigh(matrix)
    return (eigvecs * np.sqrt(_zero_rounding(eigvals))) @ eigvecs.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) for covariance matrices, via eigenvalues of sqrtS1 S2 sqrtS1."""
    sqrt1 = _sqrt_psd(sigma1)
    inner = sqrt1 @ sigma2 @ sqrt1
    inner = (inner + inner.T) / 2.0  # exact symmetry, lost to rounding in the products
    return float(np.sqrt(_zero_rounding(np.linalg.eigvalsh(inner))).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0]
    if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) \
            or sigma2.shape != (dim, dim):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) \
        - 2.0 * trace_sqrt_product(sigma1, sigma2)
    # FID is >= 0; a value a hair below 0 (identical sets) is rounding.
    return max(float(value), 0.0)


def fid_from_stats(stats1: dict[str, Any], stats2: dict[str, Any]) -> float:
    """FID between two :func:`reference_stats` dicts; DataError if different networks made them."""
    sha1, sha2 = stats1.get("weights_sha256", ""), stats2.get("weights_sha256", "")
    if sha1 and sha2 and sha1 != sha2:
        raise DataError(f"FID: statistics come from different networks (sha256 {sha1[:12]}… "
                        f"vs {sha2[:12]}…); rerun the reference stage with the current weights")
    x, y = stats1.get("features"), stats2.get("features")
    if x is not None and y is not None and max(len(x), len(y)) <= x.shape[1] // LOW_RANK_SHARE:
        # Fewer images than features: the same value from the n1×n2 Gram route (module
        # docstring), without the two 2048×2048 eigendecompositions (~2.5 s on one CPU core).
        from cyclelab.metrics.uncertainty import FeaturePair

        pair = FeaturePair(x, y)
        return pair.fid(*pair.ones())
    return frechet_distance(stats1["mu"], stats1["sigma"], stats2["mu"], stats2["sigma"])


def fid_score(real: dict[str, Any], fake: dict[str, Any], cfg: EvalConfig,
              seed: int) -> dict[str, float]:
    """The registered ``fid`` (:mod:`cyclelab.metric_registry`) of two :func:`reference_stats`."""
    return {"fid": fid_from_stats(real, fake)}


def save_stats(path: str | Path, stats: dict[str, Any]) -> None:
    """Write statistics to ``path`` as .npz, atomically, at exactly that name.

    ``np.savez`` appends ``.npz`` to file *names* that lack it (which would miss the temporary
    file and a DVC ``outs`` path), so it is given an open file instead.
    """
    arrays = {key: np.asarray(value) for key, value in stats.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_stats(path: str | Path) -> dict[str, Any]:
    """Read statistics written by :func:`save_stats`; DataError naming the file if unusable."""
    path = Path(path)
    fix = "rerun the reference stage (dvc repro)"
    if not path.is_file():
        raise DataError(f"{path}: statistics file not found; {fix}")
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable statistics file ({exc}); {fix}") from None
    missing = [key for key in STATS_KEYS if key not in stats]
    if missing:
        raise DataError(f"{path}: statistics file lacks {', '.join(missing)}; {fix}")
    mu, sigma = stats["mu"], stats["sigma"]
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise DataError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match; {fix}")
    stats["n"] = int(stats["n"])
    stats["weights_sha256"] = str(stats.get("weights_sha256", ""))
    return stats
