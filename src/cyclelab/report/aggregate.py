"""Across replicates and across variants: the numbers a reviewer can trust.

- :func:`aggregate`: per direction, the mean of every score over seeds (under the score's own
  key), its std and per-seed values, and a 95 % CI: over seeds (t-interval) when there are two
  or more, else the bootstrap CI over test images of the one seed. The identity and floor
  lines are the same for every seed and are carried over; ``worse_than_identity`` flags a
  translation whose FID is above doing nothing.
- :func:`compare_pair`: whether two variants differ in one score, by Welch's t-test over seeds
  when both have three or more, else by a paired bootstrap CI of the difference over test
  images. No difference is claimed unless it survives that test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cyclelab.metrics.uncertainty import paired_difference, seed_interval, welch

# Keys that are the same for every seed: reference lines and counts, carried over as they are.
LINE_SUFFIXES = ("_identity", "_floor", "_ceiling", "_chance", "_n")
MIN_SEEDS_FOR_T_TEST = 3


def _is_line(key: str) -> bool:
    return any(suffix in key for suffix in LINE_SUFFIXES[:2]) or key.endswith(LINE_SUFFIXES)


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
    return out


def compare_pair(values1: Sequence[float], values2: Sequence[float],
                 features1: Sequence[np.ndarray] | None, features2: Sequence[np.ndarray] | None,
                 real: np.ndarray | None, metric: str, alpha: float, resamples: int,
                 seed: int) -> dict[str, Any]:
    """Does variant 1 differ from variant 2 in ``metric`` (``fid`` or ``kid``; lower is better)?

    ``values*``: per-seed scores; ``features*``: per-seed Inception features of the
    translations (same source images, same order); ``real``: features of the real target set.
    Returns ``method``, ``diff`` (1 − 2), ``significant`` and ``p`` or ``ci95``.
    """
    if min(len(values1), len(values2)) >= MIN_SEEDS_FOR_T_TEST:
        test = welch(values1, values2)
        return {"method": f"Welch t-test over seeds ({len(values1)} vs {len(values2)})",
                **test, "significant": bool(test["p"] < alpha)}
    if not features1 or not features2 or real is None or resamples < 1:
        return {"method": "none (fewer than 3 seeds and no bootstrap)",
                "diff": float(np.mean(values1) - np.mean(values2)), "significant": False}
    test = paired_difference(features1, features2, real, metric, resamples, seed)
    lo, hi = test["ci95"]
    return {"method": f"paired bootstrap over test images ({resamples} resamples; test-image "
                      f"noise only, >= {MIN_SEEDS_FOR_T_TEST} seeds add training noise)", **test,
            "significant": bool(lo > 0 or hi < 0)}


def describe(name1: str, name2: str, label: str, result: dict[str, Any], spread: float) -> str:
    """One sentence: the verdict of :func:`compare_pair` with its evidence."""
    detail = (f"p = {result['p']:.3g}" if "p" in result else
              f"95 % CI of the difference [{result['ci95'][0]:.4g}, {result['ci95'][1]:.4g}]"
              if "ci95" in result else result["method"])
    if result["significant"]:
        better = name1 if result["diff"] < 0 else name2
        return (f"{label}: {better} is lower by {abs(result['diff']):.4g} ({detail}; "
                f"{result['method']}).")
    spread_text = f"; seed-to-seed std up to {spread:.3g}" if math.isfinite(spread) else ""
    return (f"{label}: no significant difference between {name1} and {name2} "
            f"(difference {result['diff']:.4g}, {detail}{spread_text}).")


def compare_variants(metrics: dict[str, dict], features: dict[str, dict[str, list[np.ndarray]]],
                     real: dict[str, np.ndarray], alpha: float, resamples: int,
                     seed: int) -> list[dict[str, Any]]:
    """:func:`compare_pair` for every pair of variants, direction and distribution score.

    ``metrics``: :func:`aggregate` output per variant; ``features[variant][direction]``: the
    per-seed translation features; ``real[direction]``: features of the real target set.
    Each result also holds ``variants``, ``direction``, ``metric`` and a ``sentence``.
    """
    names, results = list(metrics), []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            for direction, label in (("A_to_B", "A→B"), ("B_to_A", "B→A")):
                s1, s2 = metrics[first].get(direction, {}), metrics[second].get(direction, {})
                for metric in ("fid", "kid"):
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
                    result.update(variants=[first, second], direction=direction, metric=metric,
                                  sentence=describe(first, second, f"{metric.upper()} {label}",
                                                    result, spread))
                    results.append(result)
    return results
