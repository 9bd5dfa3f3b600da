"""Comparisons between variants: Holm–Bonferroni over one report's tests, the bootstrap
p-value, the sentences a reader sees, and the family-wise error rate under the null."""

from __future__ import annotations

import numpy as np
import pytest

from cyclelab.report.aggregate import aggregate, compare_variants
from cyclelab.report.build import verdict_lines

VARIANTS, SEEDS, REPORTS = 6, 3, 200


def test_holm_against_hand_computed_values():
    from cyclelab.metrics.uncertainty import holm

    # Sorted 0.01, 0.02, 0.03, 0.04 -> ×4, ×3, ×2, ×1 = 0.04, 0.06, 0.06, 0.04 -> running max.
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # Capped at 1, and a large first p carries over to every later one.
    assert holm([0.5, 0.001, 0.9]) == pytest.approx([1.0, 0.003, 1.0])
    assert holm([0.2, 0.2]) == pytest.approx([0.4, 0.4])
    assert holm([0.03]) == pytest.approx([0.03]) and holm([]) == []


def test_bootstrap_p_value_agrees_with_its_interval():
    from cyclelab.metrics.uncertainty import recentred_interval, recentred_p_value

    samples = np.random.default_rng(0).normal(0.0, 1.0, 999)
    # Point 0: half the resamples lie on either side of zero -> p = 1.
    assert recentred_p_value(0.0, samples) == 1.0
    # Point 3σ: about 0.13 % beyond zero on each side, never 0.
    assert 2.0 / 1000 <= recentred_p_value(3.0, samples) < 0.02
    for point in (0.5, 1.5, 2.5):
        lo, hi = recentred_interval(point, samples)
        assert (recentred_p_value(point, samples) < 0.05) == (lo > 0 or hi < 0)


def _null_report(rng: np.random.Generator) -> list[dict]:
    """compare_variants on 6 variants whose per-seed FID and KID come from one distribution."""
    metrics = {f"v{v}": aggregate({s: {direction: {"fid": float(rng.normal(100.0, 5.0)),
                                                   "kid": float(rng.normal(0.05, 0.01))}
                                       for direction in ("A_to_B", "B_to_A")}
                                   for s in range(SEEDS)})
               for v in range(VARIANTS)}
    return compare_variants(metrics, {}, {}, alpha=0.05, resamples=0, seed=0)


def test_no_difference_is_claimed_in_more_than_about_alpha_of_null_reports():
    """Family-wise error: with every variant drawn from one distribution, at most about 5 %
    of reports hold any "significant" line. Testing each of the 60 comparisons at α on its
    own (the rule before the correction) claims a difference in most reports."""
    rng = np.random.default_rng(15)
    corrected = uncorrected = 0
    for _ in range(REPORTS):
        results = _null_report(rng)
        assert len(results) == VARIANTS * (VARIANTS - 1) // 2 * 2 * 2
        corrected += any(r["significant"] for r in results)
        uncorrected += any(r["p"] < 0.05 for r in results)
    assert corrected / REPORTS <= 0.09
    assert uncorrected / REPORTS >= 0.5


def test_report_names_the_correction_and_keeps_raw_and_adjusted_p():
    rng = np.random.default_rng(1)
    per_seed = {name: {s: {"A_to_B": {"fid": float(mean + rng.normal(0.0, 1.0))}}
                       for s in range(SEEDS)}
                for name, mean in (("a", 100.0), ("b", 100.0), ("c", 160.0))}
    metrics = {name: aggregate(seeds) for name, seeds in per_seed.items()}
    results = {tuple(r["variants"]): r
               for r in compare_variants(metrics, {}, {}, 0.05, 0, 0)}
    assert len(results) == 3
    for result in results.values():
        assert result["family_size"] == 3 and result["correction"] == "Holm–Bonferroni"
        assert result["p_holm"] >= result["p"]
        assert result["significant"] == (result["p_holm"] < 0.05)
    assert results[("a", "c")]["significant"] and not results[("a", "b")]["significant"]
    same = results[("a", "b")]["sentence"]
    assert same.startswith("FID A→B: no significant difference between a and b")
    assert "Holm–Bonferroni-adjusted p" in same and "over 3 tests" in same
    assert results[("a", "c")]["sentence"].startswith("FID A→B: a is lower by")
    lines = verdict_lines(metrics, list(results.values()))
    assert lines[0].startswith("3 tests (every pair of variants × direction × FID/KID), "
                               "corrected together by Holm–Bonferroni")


def test_bootstrap_comparisons_are_corrected_and_say_when_resamples_are_too_few():
    rng = np.random.default_rng(2)
    real = {"A_to_B": rng.normal(size=(40, 8))}
    features = {name: {"A_to_B": [rng.normal(shift, 1.0, size=(40, 8))]}
                for name, shift in (("a", 0.0), ("b", 0.0), ("c", 1.5))}
    metrics = {name: {"A_to_B": {"fid": 1.0, "fid_seeds": [1.0], "fid_std": 0.0}}
               for name in features}
    few = compare_variants(metrics, features, real, 0.05, 20, 0)
    assert all("p_holm" in r and "ci95" in r for r in few)
    # 20 resamples: p >= 2/21 > 0.05/3, so nothing can be significant, and the sentence says so.
    assert not any(r["significant"] for r in few)
    assert "raise eval.bootstrap to 120 or more" in few[0]["sentence"]
    enough = {tuple(r["variants"]): r for r in compare_variants(metrics, features, real,
                                                                  0.05, 200, 0)}
    assert enough[("a", "c")]["significant"] and not enough[("a", "b")]["significant"]
    assert "resolution" not in enough[("a", "c")]


def test_avg_gms_is_the_mean_of_both_directions_per_seed_then_over_seeds():
    """seeds/004's Avg GMS beside the per-direction GMS; absent when a direction has none."""
    per_seed = {0: {"A_to_B": {"gms": 4.0}, "B_to_A": {"gms": 6.0}},
                1: {"A_to_B": {"gms": 5.0}, "B_to_A": {"gms": 9.0}}}
    out = aggregate(per_seed)
    assert out["avg_gms_seeds"] == [5.0, 7.0]
    assert out["avg_gms"] == 6.0 and out["avg_gms_std"] == pytest.approx(2 ** 0.5)
    assert out["A_to_B"]["gms"] == 4.5
    del per_seed[0]["B_to_A"]["gms"], per_seed[1]["B_to_A"]["gms"]
    assert "avg_gms" not in aggregate(per_seed)
