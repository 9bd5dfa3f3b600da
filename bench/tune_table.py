"""The tuning table of docs/default-study.md from bench/results/tune_default.jsonl.

    python bench/tune_table.py [bench/results/tune_default.jsonl]

One row per configuration: its overrides, the seeds run, validation label accuracy both ways as
mean ± std over seeds with a 95 % t-interval, doing nothing's, and the mean training time.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

from scipy import stats

DEFAULT = Path(__file__).resolve().parent / "results" / "tune_default.jsonl"


def summary(values: list[float]) -> str:
    """``mean ± std [lo, hi]`` (t-interval over seeds), or the value alone for one seed."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.2f} (1 seed)"
    std = statistics.stdev(values)
    half = stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))
    return f"{mean:.2f} ± {std:.2f} [{mean - half:.2f}, {mean + half:.2f}]"


def table(rows: list[dict]) -> str:  # noqa: D103
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    lines = ["| configuration | overrides | seeds | A→B label acc. | B→A label acc. | "
             "doing nothing A→B / B→A | train s |", "|---|---|---|---|---|---|---|"]
    for name, runs in by_name.items():
        overrides = ", ".join(f"`{k}: {v}`" for k, v in runs[0]["overrides"].items()) or "—"
        ab = [r["A_to_B"]["label_accuracy"] for r in runs]
        ba = [r["B_to_A"]["label_accuracy"] for r in runs]
        idt = (statistics.fmean(r["A_to_B"]["label_accuracy_identity"] for r in runs),
               statistics.fmean(r["B_to_A"]["label_accuracy_identity"] for r in runs))
        seconds = statistics.fmean(r["train_seconds"] for r in runs)
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(f"| {name} | {overrides} | {seeds} | {summary(ab)} | {summary(ba)} | "
                     f"{idt[0]:.2f} / {idt[1]:.2f} | {seconds:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print(table([json.loads(line) for line in path.read_text().splitlines() if line.strip()]))
