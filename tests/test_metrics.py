"""KID, SSIM/PSNR and the metrics registry (FID and the Inception network: test_fid.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cyclelab.config import EvalConfig
from cyclelab.errors import ConfigError, DataError
from cyclelab.metrics import (
    METRICS,
    PSNR_CAP_DB,
    Metric,
    check_names,
    compute_distribution,
    compute_paired,
    fid_from_stats,
    kernel_inception_distance,
    psnr,
    reference_stats,
    register,
    ssim,
)
from cyclelab.metrics.kid import mmd2_unbiased, polynomial_kernel

# ---------------------------------------------------------------- KID


def _mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² estimator written out pair by pair (Bińkowski et al., eq. 3)."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (sum(a[i] * b[i] for i in range(d)) / d + 1) ** 3

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2 * cross / (m * m)


def test_polynomial_kernel_value():
    x, y = np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(polynomial_kernel(x, y), [[(11 / 2 + 1) ** 3, 1.0]])


def test_mmd2_matches_pairwise_reference():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_reference(x, y), rel=1e-12)


def test_kid_matches_reference_with_capped_subsets():
    rng = np.random.default_rng(1)
    feats1, feats2 = rng.normal(size=(9, 4)), rng.normal(size=(6, 4)) + 0.2
    mean, std = kernel_inception_distance(feats1, feats2, subsets=4, subset_size=50, seed=7)
    # Subsets are capped at min(n1, n2) = 6 and drawn in this order from default_rng(seed).
    draw = np.random.default_rng(7)
    expected = [_mmd2_reference(feats1[draw.choice(9, 6, replace=False)],
                                feats2[draw.choice(6, 6, replace=False)]) for _ in range(4)]
    assert mean == pytest.approx(np.mean(expected), rel=1e-12)
    assert std == pytest.approx(np.std(expected), rel=1e-9)
    assert std > 0  # 6 of 9 features on one side: subsets differ


def test_kid_full_subsets_equal_the_whole_set_estimate():
    rng = np.random.default_rng(2)
    feats1, feats2 = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    mean, std = kernel_inception_distance(feats1, feats2, subsets=3, subset_size=8, seed=0)
    assert mean == pytest.approx(mmd2_unbiased(feats1, feats2), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_same_distribution_near_zero_shifted_positive_and_seeded():
    rng = np.random.default_rng(3)
    feats1, feats2 = rng.normal(size=(100, 16)), rng.normal(size=(100, 16))
    same_mean, same_std = kernel_inception_distance(feats1, feats2, 10, 50, seed=0)
    shifted_mean, _ = kernel_inception_distance(feats1, feats2 + 0.5, 10, 50, seed=0)
    # Sampling noise of 50-feature subsets is ~0.03 here; a 0.5 shift per dimension gives ~1.
    assert abs(same_mean) < 0.05 and 0 < same_std < 0.1
    assert shifted_mean > 0.5 > 10 * abs(same_mean)
    assert kernel_inception_distance(feats1, feats2, 10, 50, seed=0) == (same_mean, same_std)
    assert kernel_inception_distance(feats1, feats2, 10, 50, seed=1)[0] != same_mean


def test_kid_needs_two_images():
    with pytest.raises(DataError, match="at least 2 images"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# ---------------------------------------------------------------- SSIM / PSNR


def test_ssim_identical_and_constant_images_closed_form():
    img = np.random.default_rng(4).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    grey_100, grey_120 = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2  # flat images: only the luminance term differs from 1
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(grey_100, grey_120) == pytest.approx(expected, rel=1e-9)


def test_psnr_values_and_cap():
    img = np.random.default_rng(5).integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
    assert psnr(img, img + 1) == pytest.approx(10 * math.log10(255**2), rel=1e-12)  # MSE 1
    assert psnr(img, img) == PSNR_CAP_DB == 100.0
    assert math.isfinite(psnr(img, img))


def test_similarity_rejects_wrong_inputs():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(img, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        psnr(img, img.astype(np.float32))


# ---------------------------------------------------------------- registry


def test_registry_names_and_kinds():
    assert {name: metric.kind for name, metric in METRICS.items()} == {
        "fid": "distribution", "kid": "distribution", "is": "distribution",
        "gms": "distribution", "ssim": "paired", "psnr": "paired"}
    assert check_names(["psnr", "fid"]) == ["psnr", "fid"]
    with pytest.raises(ConfigError, match="eval.metrics: unknown metric 'lpips'; available: fid"):
        check_names(["fid", "lpips"])
    with pytest.raises(ValueError, match="registered twice"):
        register(Metric("fid", "distribution", "again", "cyclelab.metrics.fid:fid_score"))
    with pytest.raises(ValueError, match="metric kind must be"):
        register(Metric("lpips", "perceptual", "", "cyclelab.metrics.fid:fid_score"))
    assert "lpips" not in METRICS
    assert METRICS["ssim"].fn is ssim and METRICS["psnr"].fn is psnr
    assert f"capped at {PSNR_CAP_DB:g} " in METRICS["psnr"].description


def test_compute_distribution_runs_the_listed_metrics():
    rng = np.random.default_rng(6)
    real = reference_stats(rng.normal(size=(12, 4)), "d" * 64)
    fake = reference_stats(rng.normal(size=(10, 4)) + 1.0, "d" * 64)
    cfg = EvalConfig(kid_subsets=3, kid_subset_size=5)
    results = compute_distribution(["fid", "kid", "ssim"], real, fake, cfg, seed=2)
    assert sorted(results) == ["fid", "kid_mean", "kid_std"]
    assert results["fid"] == pytest.approx(fid_from_stats(real, fake))
    assert (results["kid_mean"], results["kid_std"]) == kernel_inception_distance(
        real["features"], fake["features"], subsets=3, subset_size=5, seed=2)
    shift = real["mu"] - fake["mu"]
    assert results["fid"] >= shift @ shift > 1.0  # the covariance term is >= 0
    assert compute_distribution(["psnr"], real, fake, cfg) == {}


def test_kid_without_stored_features_is_a_data_error():
    stats = reference_stats(np.random.default_rng(7).normal(size=(4, 3)))
    del stats["features"]
    with pytest.raises(DataError, match="rerun the reference stage"):
        compute_distribution(["kid"], stats, stats, EvalConfig())


def test_compute_paired_gives_one_value_per_pair():
    rng = np.random.default_rng(8)
    images_a = rng.integers(0, 255, size=(3, 16, 16, 3), dtype=np.uint8)
    images_b = images_a.copy()
    images_b[1] += 1
    results = compute_paired(["fid", "psnr", "ssim"], images_a, images_b)
    assert sorted(results) == ["psnr", "ssim"]
    np.testing.assert_allclose(results["psnr"], [100.0, 10 * math.log10(255**2), 100.0])
    assert results["ssim"].dtype == np.float64 and results["ssim"].shape == (3,)
    assert results["ssim"][0] == pytest.approx(1.0) and results["ssim"][1] < 1.0
    with pytest.raises(ValueError, match="equal counts"):
        compute_paired(["ssim"], images_a, images_b[:2])
