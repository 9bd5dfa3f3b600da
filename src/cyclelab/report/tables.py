"""The report's tables: the metrics table (mean with 95 % CI, ± std over seeds, the identity,
floor and ceiling lines) as markdown and HTML, from the compare stage's aggregates."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from cyclelab import directions
from cyclelab.metric_registry import report_columns

DIRECTIONS = tuple((d.key, d.label) for d in directions.DIRECTIONS)  # (key, label) pairs
LINES = (("identity", "doing nothing (untranslated source vs target)"),
         ("floor", "floor (real target test vs real target train, same N)"),
         ("ceiling", "ceiling (target classifier on real target test images)"))


def read_csv(path: Path) -> list[dict[str, float | str]]:
    """Rows of a CSV with numeric-looking fields as floats."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        parsed: dict[str, float | str] = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                parsed[key] = value
        out.append(parsed)
    return out


def _fmt(value: Any, pattern: str) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return pattern.format(value)


def with_ci(value: Any, ci: Any, pattern: str) -> str:
    """``value`` formatted with ``pattern``, then its ``[lo, hi]`` CI when there is one."""
    text = _fmt(value, pattern)
    if isinstance(ci, list) and len(ci) == 2 and text != "–":
        text += f" [{_fmt(ci[0], pattern)}, {_fmt(ci[1], pattern)}]"
    return text


def with_std(scores: dict, key: str, pattern: str) -> str:
    """``scores[key]`` formatted with ``pattern``, then ``± std`` over seeds when several."""
    text = _fmt(scores.get(key), pattern)
    std = scores.get(f"{key}_std")
    if scores.get(f"{key}_seeds") and len(scores[f"{key}_seeds"]) > 1 and text != "–":
        text += f" ± {_fmt(std, pattern)}"
    return text


def with_std_ci(scores: dict, key: str, pattern: str) -> str:
    """:func:`with_std`, then the 95 % CI (over seeds with several, over images with one)."""
    text = with_std(scores, key, pattern)
    ci = scores.get(f"{key}_ci95")
    if isinstance(ci, list) and len(ci) == 2 and text != "–":
        text += f" [{_fmt(ci[0], pattern)}, {_fmt(ci[1], pattern)}]"
    return text


def metrics_table(metrics: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one per variant (the registry's columns: mean with 95 % CI, or ± std
    over seeds; ⚠ where a translation scores worse than doing nothing), then the identity and
    floor lines, per direction."""
    columns = report_columns()
    header = ["variant", "seeds"]
    for _, label in DIRECTIONS:
        header += [f"{label} {column.label}" for column in columns]
    rows = []
    for variant, data in metrics.items():
        row = [variant, str(data.get("n_seeds", 1))]
        for direction, _ in DIRECTIONS:
            scores = data.get(direction, {})
            for column in columns:
                key, pattern = column.key, column.fmt
                if not column.interval:
                    row.append(with_std(scores, key, pattern))
                    continue
                cell = with_ci(scores.get(key), scores.get(f"{key}_ci95"), pattern)
                if key == "fid" and scores.get("worse_than_identity"):
                    cell = "⚠ " + cell
                row.append(cell)
        rows.append(row)
    first = next(iter(metrics.values()), {})
    for line, label in LINES:
        row = [label, "–"]
        for direction, _ in DIRECTIONS:
            scores = first.get(direction, {})
            for column in columns:
                row.append(with_ci(scores.get(f"{column.key}_{line}"),
                                   scores.get(f"{column.key}_{line}_ci95"), column.fmt))
        if any(cell != "–" for cell in row[2:]):
            rows.append(row)
    # Columns no variant has (e.g. label accuracy without labels) are dropped.
    keep = [i for i in range(len(header)) if i < 2
            or any(r[i] != "–" for r in rows[:len(metrics)])]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:  # noqa: D103
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:  # noqa: D103
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
