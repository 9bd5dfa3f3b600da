"""Validation label accuracy against training time, the curve of docs/default-study.md.

    python bench/tune_curve.py OUT.png [RESULTS.jsonl] [--prefix C1_e]

Reads the tuning records of bench/tune_default.py and plots, for every configuration whose name
starts with the prefix (one budget each, e.g. C1_e6, C1_e9, ...), both directions' mean label
accuracy over its seeds against its mean training seconds, with the seeds' min-max as error
bars and the doing-nothing lines. Written to a temporary file, then renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT = Path(__file__).resolve().parent / "results" / "tune_default_final.jsonl"
DIRECTIONS = (("A_to_B", "A→B", "tab:blue"), ("B_to_A", "B→A", "tab:orange"))


def series(rows: list[dict], prefix: str) -> dict[str, list[dict]]:
    """The records of each configuration named ``prefix…``, in order of training time."""
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        if row["name"].startswith(prefix):
            by_name.setdefault(row["name"], []).append(row)
    return dict(sorted(by_name.items(),
                       key=lambda item: statistics.fmean(r["train_seconds"] for r in item[1])))


def plot(groups: dict[str, list[dict]], out: Path) -> None:  # noqa: D103
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for key, label, colour in DIRECTIONS:
        xs, ys, lo, hi = [], [], [], []
        for runs in groups.values():
            values = [r[key]["label_accuracy"] for r in runs]
            xs.append(statistics.fmean(r["train_seconds"] for r in runs))
            ys.append(statistics.fmean(values))
            lo.append(ys[-1] - min(values))
            hi.append(max(values) - ys[-1])
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=colour, label=label)
        for x, y, (name, runs) in zip(xs, ys, groups.items(), strict=True):
            ax.annotate(f"{name} ({len(runs)})", (x, y), textcoords="offset points",
                        xytext=(4, -10), fontsize=7, color=colour)
        nothing = statistics.fmean(r[key]["label_accuracy_identity"]
                                   for runs in groups.values() for r in runs)
        ax.axhline(nothing, color=colour, linestyle=":", linewidth=1,
                   label=f"{label} doing nothing")
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1, label="target 0.90")
    ax.set_xlabel("training seconds per run (2-core CPU)")
    ax.set_ylabel("validation label accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("label accuracy against training time (seeds in brackets)", fontsize=9)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("results", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--prefix", default="C1_e")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    groups = series(rows, args.prefix)
    if not groups:
        raise SystemExit(f"{args.results}: no configuration named {args.prefix}*")
    plot(groups, args.out)


if __name__ == "__main__":
    main()
