"""Uncertainty: exact resampled FID/KID, bootstrap coverage, the significance rule, aggregation
over seeds, and the identity and floor lines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cyclelab.metrics import fid
from cyclelab.metrics.fid import feature_stats, frechet_distance, reference_stats
from cyclelab.metrics.kid import mmd2_unbiased
from cyclelab.metrics.translation import distribution_scores
from cyclelab.metrics.uncertainty import (
    FeaturePair,
    bootstrap,
    paired_difference,
    recentred_interval,
    score_with_ci,
    seed_interval,
)
from cyclelab.report.aggregate import aggregate, compare_pair


def features(rng, n, shift=0.0, scale=1.0, dim=64):
    return rng.normal(shift, scale, size=(n, dim))


def test_resampled_fid_and_kid_equal_the_direct_formulas():
    rng = np.random.default_rng(0)
    x, y = features(rng, 30, 0.3, 1.2), features(rng, 40)
    pair = FeaturePair(x, y)
    assert pair.fid(*pair.ones()) == pytest.approx(
        frechet_distance(*feature_stats(x), *feature_stats(y)), rel=1e-9)
    # A resample with duplicates is the same as the duplicated rows themselves.
    counts = np.bincount(rng.integers(0, 30, 30), minlength=30).astype(float)
    repeated = np.repeat(x, counts.astype(int), axis=0)
    assert pair.fid(counts, np.ones(40)) == pytest.approx(
        frechet_distance(*feature_stats(repeated), *feature_stats(y)), rel=1e-9)
    same = FeaturePair(x, y[:30])
    assert same.kid(*same.ones()) == pytest.approx(mmd2_unbiased(x, y[:30]), rel=1e-9)


def test_percentile_bootstrap_covers_a_known_mean():
    """95 % intervals of the mean of N(1, 1) samples contain 1 in about 95 % of trials."""
    rng = np.random.default_rng(1)
    hits, trials = 0, 200
    for trial in range(trials):
        sample = rng.normal(1.0, 1.0, 60)
        def stat(c, s=sample):
            return (float(c @ s / c.sum()))
        lo, hi = recentred_interval(sample.mean(), bootstrap(stat, [60], 200, trial))
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / trials <= 0.99


def kid_population(mean_x: float, mean_y: float, dim: int) -> float:
    """MMD² under KID's kernel (x·y/d + 1)³ of N(mean_x, I) and N(mean_y, I) in ``dim`` dims.

    With z = (x/√d, 1) the kernel is (z·z')³, so MMD² = ‖E z⊗z⊗z − E z'⊗z'⊗z'‖², and a
    Gaussian's third moment is m⊗m⊗m plus the three m⊗S terms (its central third moment is 0).
    """
    def third_moment(mean: float) -> np.ndarray:
        m = np.append(np.full(dim, mean / np.sqrt(dim)), 1.0)
        s = np.diag(np.append(np.full(dim, 1.0 / dim), 0.0))
        return (np.einsum("a,b,c->abc", m, m, m) + np.einsum("a,bc->abc", m, s)
                + np.einsum("b,ac->abc", m, s) + np.einsum("c,ab->abc", m, s))
    return float(((third_moment(mean_x) - third_moment(mean_y)) ** 2).sum())


def test_kid_population_value_matches_a_large_sample():
    rng = np.random.default_rng(5)
    pair = FeaturePair(features(rng, 2000, 0.3, dim=8), features(rng, 2000, dim=8))
    assert pair.kid(*pair.ones()) == pytest.approx(kid_population(0.3, 0.0, 8), rel=0.1)


def test_kid_interval_covers_the_population_value(tiny_params):
    """One estimator: ``kid`` is the full-set U-statistic whatever the subsets, and its 95 %
    interval, a bootstrap of that statistic, holds the true MMD² of two Gaussians (a known
    shift) in about 95 % of trials. The subset mean of few small subsets (what ``kid`` was)
    is noisier than the interval around it says."""
    cfg = dataclasses.replace(tiny_params.eval, metrics=["kid"], kid_subsets=2,
                              kid_subset_size=10, bootstrap=200)
    true, rng, hits, trials = kid_population(0.3, 0.0, 64), np.random.default_rng(6), 0, 200
    for trial in range(trials):
        fake, real = features(rng, 50, 0.3), features(rng, 50)
        scores = distribution_scores(fake, reference_stats(real), cfg, seed=trial)
        pair = FeaturePair(fake, real)
        assert scores["kid"] == pytest.approx(pair.kid(*pair.ones()), rel=1e-9)
        lo, hi = scores["kid_ci95"]
        hits += lo <= true <= hi
    assert 0.9 <= hits / trials <= 0.98


def test_ci_contains_the_estimate_and_narrows_with_more_images():
    rng = np.random.default_rng(2)
    small = score_with_ci(features(rng, 20, 0.5), features(rng, 20), 100, 0)
    large = score_with_ci(features(rng, 200, 0.5), features(rng, 200), 100, 0)
    for scores in (small, large):
        for key in ("fid", "kid"):
            lo, hi = scores[f"{key}_ci95"]
            assert lo <= scores[key] <= hi
    def width(s):
        return (s["fid_ci95"][1] - s["fid_ci95"][0])
    assert width(large) < width(small)
    assert score_with_ci(features(rng, 5), features(rng, 5), 0, 0).keys() == {"fid", "kid"}


def test_same_distribution_is_no_difference_and_a_shift_is_one():
    rng = np.random.default_rng(3)
    real = features(rng, 80)
    same1, same2 = [features(rng, 80, 0.3)], [features(rng, 80, 0.3)]
    result = compare_pair([1.0], [1.0], same1, same2, real, "fid", 0.05, 200, 0)
    assert not result["significant"] and result["ci95"][0] < 0 < result["ci95"][1]
    shifted = [features(rng, 80, 0.9)]
    result = compare_pair([1.0], [2.0], same1, shifted, real, "fid", 0.05, 200, 0)
    assert result["significant"] and result["diff"] < 0 and result["ci95"][1] < 0
    kid = paired_difference(same1, shifted, real, "kid", 100, 0)
    assert kid["ci95"][1] < 0


def test_three_seeds_use_welch_and_small_gaps_are_not_significant():
    noisy = compare_pair([100.0, 110.0, 90.0], [101.0, 111.0, 92.0], None, None, None, "fid",
                         0.05, 0, 0)
    assert noisy["method"].startswith("Welch") and not noisy["significant"]
    clear = compare_pair([100.0, 101.0, 99.0], [150.0, 151.0, 149.5], None, None, None, "fid",
                         0.05, 0, 0)
    assert clear["significant"] and clear["p"] < 0.05 and clear["diff"] < 0
    # Fewer than three seeds and nothing to resample: never called a difference.
    assert not compare_pair([1.0], [50.0], None, None, None, "fid", 0.05, 0, 0)["significant"]


def test_aggregate_over_seeds():
    lines = {"fid_identity": 150.0, "fid_floor": 20.0}
    per_seed = {s: {"A_to_B": {"fid": fid, "fid_ci95": [fid - 5, fid + 5], "ssim": 0.5,
                               "n_images": 10, **lines}}
                for s, fid in ((0, 100.0), (1, 140.0), (2, 180.0))}
    agg = aggregate(per_seed)
    scores = agg["A_to_B"]
    assert agg["seeds"] == [0, 1, 2] and agg["n_seeds"] == 3
    assert scores["fid"] == pytest.approx(140.0) and scores["fid_std"] == pytest.approx(40.0)
    assert scores["fid_seeds"] == [100.0, 140.0, 180.0]
    assert scores["fid_ci95"] == pytest.approx(seed_interval([100.0, 140.0, 180.0]))
    assert scores["fid_identity"] == 150.0 and not scores["worse_than_identity"]
    one = aggregate({0: per_seed[2]})["A_to_B"]
    assert one["fid_ci95"] == [175.0, 185.0] and one["worse_than_identity"]
    assert one["fid_std"] == 0.0


def test_aggregate_keeps_how_each_seed_was_trained():
    per_seed = {s: {"A_to_B": {"fid": 1.0, "train_precision": p, "train_device": d}}
                for s, p, d in ((0, "fp32", "cpu"), (1, "bf16", "cuda"), (2, "fp32", "cpu"))}
    scores = aggregate(per_seed)["A_to_B"]
    assert scores["train_precision"] == "fp32, bf16" and scores["train_device"] == "cpu, cuda"
    assert aggregate({0: per_seed[0]})["A_to_B"]["train_precision"] == "fp32"


def test_identity_and_floor_lines_from_the_reference_stage(tiny_params):
    """Doing nothing scores the untranslated source set; the floor real against real."""
    rng = np.random.default_rng(4)
    real_b, train_b, real_a = features(rng, 40, 0.0), features(rng, 40, 0.0), \
        features(rng, 40, 1.0)
    cfg = tiny_params.eval
    identity = distribution_scores(real_a, reference_stats(real_b), cfg)
    floor = distribution_scores(train_b, reference_stats(real_b), cfg)
    assert floor["fid"] < identity["fid"] and floor["kid"] < identity["kid"]
    assert identity["fid_ci95"][0] <= identity["fid"] <= identity["fid_ci95"][1]


def test_fid_of_statistics_with_features_takes_the_gram_route_to_the_same_value(monkeypatch):
    """fid_from_stats: statistics that keep their features (fewer images than half the feature
    dimensions) give the eigendecomposition's value without computing it."""
    rng = np.random.default_rng(3)
    real = fid.reference_stats(rng.normal(size=(40, 256)) ** 2)
    fake = fid.reference_stats(rng.normal(size=(30, 256)) ** 2 + 0.2)
    by_moments = fid.frechet_distance(real["mu"], real["sigma"], fake["mu"], fake["sigma"])
    no_features = {k: v for k, v in real.items() if k != "features"}
    assert fid.fid_from_stats(no_features, fake) == by_moments  # the moments only: eigh
    monkeypatch.setattr(fid, "trace_sqrt_product", None)  # the Gram route must not call it
    assert fid.fid_from_stats(real, fake) == pytest.approx(by_moments, rel=1e-12)
    big = fid.reference_stats(rng.normal(size=(200, 256)))  # more than half of 256: eigh
    with pytest.raises(TypeError):
        fid.fid_from_stats(big, fake)
