"""The lines ``make study`` ends with: per direction, label accuracy and FID against doing nothing.

One line per direction and variant, read from ``reports/metrics/<variant>.json`` (the DVC
metrics the compare stage writes), so what a user reads in the terminal is what the report
and ``dvc metrics show`` say. Run as ``python -m cyclelab.report.headline``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cyclelab import paths
from cyclelab.directions import KEYS
from cyclelab.errors import UserError
from cyclelab.io import read_json


def _ci(scores: dict[str, Any], key: str) -> str:
    interval = scores.get(f"{key}_ci95")
    return f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else ""


def direction_line(variant: str, direction: str, scores: dict[str, Any]) -> str:
    """``baseline A→B: label accuracy 0.95 [..] (doing nothing 0.18, ceiling 1.00); FID ...``."""
    arrow = direction.replace("_to_", "→")
    parts = []
    if "label_accuracy" in scores:
        parts.append(
            f"label accuracy {scores['label_accuracy']:.3f}{_ci(scores, 'label_accuracy')} "
            f"(doing nothing {scores.get('label_accuracy_identity', float('nan')):.3f}, "
            f"classifier ceiling {scores.get('label_accuracy_ceiling', float('nan')):.3f})")
    if "fid" in scores:
        upper = (scores.get("fid_ci95") or [scores["fid"]] * 2)[1]
        identity = scores.get("fid_identity", float("nan"))
        verdict = ("better than doing nothing" if upper < identity else
                   "WORSE than doing nothing" if scores["fid"] > identity else
                   "not distinguishable from doing nothing")
        parts.append(f"FID {scores['fid']:.1f}{_ci(scores, 'fid')} against doing nothing "
                     f"{identity:.1f} (floor {scores.get('fid_floor', float('nan')):.1f}): "
                     f"{verdict}")
    return f"{variant} {arrow}: " + "; ".join(parts or ["no scores"])


def headline(metrics_dir: Path = paths.METRICS) -> list[str]:
    """Every variant's direction lines, in file-name order."""
    files = sorted(Path(metrics_dir).glob("*.json"))
    if not files:
        raise UserError(f"{metrics_dir}: no metrics files; run `dvc repro` first")
    lines = []
    for path in files:
        result = read_json(path, "dvc repro")
        n_seeds = result.get("n_seeds", 1)
        for direction in KEYS:
            if direction in result:
                lines.append(direction_line(path.stem, direction, result[direction])
                             + f" ({n_seeds} seed{'s' if n_seeds != 1 else ''})")
    return lines


def main() -> int:  # noqa: D103
    try:
        print("\n".join(headline()))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
