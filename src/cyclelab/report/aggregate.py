"""Across replicates and across variants: the numbers a reviewer can trust.

- :func:`aggregate`: per direction, the mean of every score over seeds (under the score's own
  key), its std and per-seed values, and a 95 % CI: over seeds (t-interval) when there are two
  or more, else the bootstrap CI over test images of the one seed. The identity and floor
  lines are the same for every seed and are carried over; ``worse_than_identity`` flags a
  translation whose FID is above doing nothing. With GMS both ways, ``avg_gms`` (seeds/004's
  "Avg GMS": the mean of the two directions' GMS, per seed, then over seeds) beside them.
- :func:`compare_pair`: whether two variants differ in one score, by Welch's t-test over seeds
  when both have three or more, else by a paired bootstrap over test images (its p-value read
  off the recentred resamples that also give the CI of the difference).
- :func:`compare_variants`: that test for every pair, direction and score of one report, and
  the Holm–Bonferroni correction over all of them (V variants give V(V−1)/2 × 2 × 2 tests; at
  α each, some would come out "significant" by chance alone). A difference is claimed only
  where its adjusted p-value is below α, which holds the chance of any false claim in the
  report at α.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cyclelab.directions import DIRECTIONS
from cyclelab.errors import DataError
from cyclelab.metric_registry import compared
from cyclelab.metrics.uncertainty import holm, paired_difference, seed_interval, welch

# Keys that are the same for every seed: reference lines and counts, carried over as they are.
LINE_SUFFIXES = ("_identity", "_floor", "_ceiling", "_chance", "_n")
MIN_SEEDS_FOR_T_TEST = 3
CORRECTION = "Holm–Bonferroni"


def _is_line(key: str) -> bool:
    return any(suffix in key for suffix in LINE_SUFFIXES[:2]) or key.endswith(LINE_SUFFIXES)


def stage_name(kind: str, variant: str, finetunes: Collection[str] = (),
               seed: int | None = None) -> str:
    """The DVC stage that writes a ``train``, ``evaluate`` or ``compare`` output of
    ``variant`` (``finetunes``: the names under ``finetunes:``, whose stages are their own)."""
    if variant in finetunes:
        kind = {"train": "finetune", "evaluate": "evaluate_finetune",
                "compare": "compare_finetune"}[kind]
    with_seed = seed is not None and kind != "finetune"  # one finetune stage runs every seed
    return f"{kind}@{variant}" + (f"-{seed}" if with_seed else "")


def load_features(files: dict[str, dict[int, Path]], finetunes: Collection[str] = ()
                  ) -> dict[str, dict[str, list[np.ndarray]]]:
    """``{variant: {direction: [features per seed]}}`` from the evaluate stage's
    ``features.npz`` files (``files[variant][seed]``); every file listed must exist, else a
    DataError names it and the stage that writes it (a variant compared without one of its
    seeds would be compared on the others without saying so)."""
    features: dict[str, dict[str, list[np.ndarray]]] = {}
    for variant, by_seed in files.items():
        for seed, file in by_seed.items():
            if not Path(file).is_file():
                raise DataError(f"{file}: not found; run `dvc repro "
                                f"{stage_name('evaluate', variant, finetunes, seed)}`")
            with np.load(file) as data:
                for direction in data.files:
                    features.setdefault(variant, {}).setdefault(direction, []).append(
                        data[direction])
    return features


def aggregate(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """One variant's scores over its seeds (``{seed: {direction: {key: value}}}``)."""
    seeds = sorted(per_seed)
    out: dict[str, Any] = {"seeds": seeds, "n_seeds": len(seeds)}
    for direction in per_seed[seeds[0]]:
        rows = [per_seed[s][direction] for s in seeds]
        agg: dict[str, Any] = {}
        for key, first in rows[0].items():
            if _is_line(key) or key == "n_images":
                agg[key] = first
            elif isinstance(first, int | float) and not isinstance(first, bool):
                values = [float(r[key]) for r in rows]
                agg[key] = float(np.mean(values))
                agg[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                agg[f"{key}_seeds"] = values
                if len(values) > 1 and f"{key}_ci95" in rows[0]:
                    agg[f"{key}_ci95"] = seed_interval(values)
            elif key.endswith("_ci95") and len(rows) == 1:
                agg[key] = first
            elif isinstance(first, str):  # train_precision, train_device: one, or each seed's
                agg[key] = ", ".join(dict.fromkeys(str(r.get(key)) for r in rows))
        if "fid" in agg and "fid_identity" in agg:
            agg["worse_than_identity"] = bool(agg["fid"] > agg["fid_identity"])
        out[direction] = agg
    keys = [d.key for d in DIRECTIONS]
    if all("gms_seeds" in out.get(k, {}) for k in keys):  # seeds/004's Avg GMS, per seed
        values = [float(np.mean(pair)) for pair in zip(*(out[k]["gms_seeds"] for k in keys),
                                                        strict=True)]
        out["avg_gms"] = float(np.mean(values))
        out["avg_gms_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out["avg_gms_seeds"] = values
    return out


def compare_pair(values1: Sequence[float], values2: Sequence[float],
                 features1: Sequence[np.ndarray] | None, features2: Sequence[np.ndarray] | None,
                 real: np.ndarray | None, metric: str, alpha: float, resamples: int,
                 seed: int) -> dict[str, Any]:
    """Does variant 1 differ from variant 2 in ``metric`` (a compared one: ``fid``, ``kid``)?

    ``values*``: per-seed scores; ``features*``: per-seed Inception features of the
    translations (same source images, same order); ``real``: features of the real target set.
    Returns ``method``, ``diff`` (1 − 2), ``p`` (raw, two-sided; absent when there is nothing
    to test), ``ci95`` (bootstrap only) and ``significant``: ``p < alpha`` for this test on its
    own. Within a report, :func:`compare_variants` replaces it by the verdict after correction.
    """
    if min(len(values1), len(values2)) >= MIN_SEEDS_FOR_T_TEST:
        test = welch(values1, values2)
        return {"method": f"Welch t-test over seeds ({len(values1)} vs {len(values2)})",
                **test, "significant": bool(test["p"] < alpha)}
    if not features1 or not features2 or real is None or resamples < 1:
        return {"method": "none (fewer than 3 seeds and no bootstrap)",
                "diff": float(np.mean(values1) - np.mean(values2)), "significant": False}
    test = paired_difference(features1, features2, real, metric, resamples, seed)
    return {"method": f"paired bootstrap over test images ({resamples} resamples; test-image "
                      f"noise only, >= {MIN_SEEDS_FOR_T_TEST} seeds add training noise)", **test,
            "significant": bool(test["p"] < alpha)}


def correct(results: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Holm–Bonferroni over the ``results`` of :func:`compare_pair` that hold a ``p``: adds
    ``p_holm``, ``family_size``, ``alpha`` and ``correction`` to every result and sets
    ``significant`` to ``p_holm < alpha`` (False where there was nothing to test)."""
    tested = [r for r in results if "p" in r]
    for result, adjusted in zip(tested, holm([r["p"] for r in tested]), strict=True):
        result["p_holm"] = adjusted
    for result in results:
        result.update(significant=bool(result.get("p_holm", 1.0) < alpha),
                      family_size=len(tested), alpha=alpha, correction=CORRECTION)
    return results


def describe(name1: str, name2: str, label: str, result: dict[str, Any], spread: float) -> str:
    """One sentence: the verdict of :func:`compare_pair` after :func:`correct`, with its
    evidence (raw and adjusted p, the bootstrap CI where there is one)."""
    parts = []
    if "p_holm" in result:
        parts.append(f"p = {result['p']:.3g}, {result['correction']}-adjusted p = "
                     f"{result['p_holm']:.3g} over {result['family_size']} tests")
    if "ci95" in result:
        parts.append(f"unadjusted 95 % CI of the difference [{result['ci95'][0]:.4g}, "
                     f"{result['ci95'][1]:.4g}]")
    parts.append(result["method"])
    if result.get("resolution"):
        parts.append(result["resolution"])
    detail = "; ".join(parts)
    if result["significant"]:
        better = name1 if result["diff"] < 0 else name2
        return f"{label}: {better} is lower by {abs(result['diff']):.4g} ({detail})."
    spread_text = f"; seed-to-seed std up to {spread:.3g}" if math.isfinite(spread) else ""
    return (f"{label}: no significant difference between {name1} and {name2} "
            f"(difference {result['diff']:.4g}; {detail}{spread_text}).")


def family_sentence(comparisons: list[dict[str, Any]]) -> str | None:
    """How the report's comparisons were corrected, in one sentence (None without tests)."""
    tested = [c for c in comparisons if "p_holm" in c]
    if not tested:
        return None
    alpha, m = tested[0]["alpha"], tested[0]["family_size"]
    found = sum(c["significant"] for c in tested)
    scores = "/".join(name.upper() for name in compared())
    return (f"{m} tests (every pair of variants × direction × {scores}), corrected together by "
            f"{tested[0]['correction']}: a difference is called significant only where its "
            f"adjusted p-value is below {alpha:g}, which holds the chance of any false claim in "
            f"this report at {alpha:g}; {found} of {m} significant.")


def compare_variants(metrics: dict[str, dict], features: dict[str, dict[str, list[np.ndarray]]],
                     real: dict[str, np.ndarray], alpha: float, resamples: int,
                     seed: int) -> list[dict[str, Any]]:
    """:func:`compare_pair` for every pair of variants, direction and compared metric (the
    registry's :func:`~cyclelab.metric_registry.compared`: FID and KID), corrected together by
    :func:`correct` (Holm–Bonferroni, family-wise error ``alpha``).

    ``metrics``: :func:`aggregate` output per variant; ``features[variant][direction]``: the
    per-seed translation features; ``real[direction]``: features of the real target set.
    Each result also holds ``variants``, ``direction``, ``metric`` and a ``sentence``. A
    bootstrap p-value cannot fall below 2 / (resamples + 1); where that is above the strictest
    Holm threshold α / m, ``resolution`` says how many resamples would be needed.
    """
    names, results, context = list(metrics), [], []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            for direction, label, *_ in DIRECTIONS:
                s1, s2 = metrics[first].get(direction, {}), metrics[second].get(direction, {})
                for metric in compared():
                    if metric not in s1 or metric not in s2:
                        continue
                    result = compare_pair(
                        s1[f"{metric}_seeds"], s2[f"{metric}_seeds"],
                        features.get(first, {}).get(direction),
                        features.get(second, {}).get(direction), real.get(direction), metric,
                        alpha, resamples, seed)
                    spread = (max(s1[f"{metric}_std"], s2[f"{metric}_std"])
                              if min(len(s1[f"{metric}_seeds"]), len(s2[f"{metric}_seeds"])) > 1
                              else float("nan"))
                    result.update(variants=[first, second], direction=direction, metric=metric)
                    results.append(result)
                    context.append((f"{metric.upper()} {label}", spread))
    correct(results, alpha)
    m = results[0]["family_size"] if results else 0
    floor = 2.0 / (resamples + 1)
    for result, (label, spread) in zip(results, context, strict=True):
        if "ci95" in result and m and floor > alpha / m:
            result["resolution"] = (
                f"{resamples} resamples cannot give p below {floor:.3g}, above the strictest "
                f"Holm threshold {alpha:g}/{m} = {alpha / m:.3g}: raise eval.bootstrap to "
                f"{math.ceil(2 * m / alpha)} or more")
        first, second = result["variants"]
        result["sentence"] = describe(first, second, label, result, spread)
    return results
