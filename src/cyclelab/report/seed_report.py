"""The section a study's report opens with: its seed report beside ours.

The preset named by ``study.preset`` holds the seed report (``preset.seed_report``, parsed by
:class:`cyclelab.presets.SeedReport`): its conditions, its tables verbatim, each row with ours
beside it where we have the same row (mean ± std over seeds [95 % CI], formatted as the metrics
table formats that score), its claims quoted with a pointer to our tests, and what differs in
protocol. :func:`seed_section` builds it; both pages render it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from cyclelab.directions import BY_KEY
from cyclelab.metric_registry import report_columns
from cyclelab.presets import ReportTable, SeedReport
from cyclelab.report.tables import html_table, markdown_table, with_std_ci

OURS_NOTE = ("Ours: the same row of this study, mean ± std over seeds [95 % CI] from "
             "reports/metrics/<variant>.json, as in the metrics table below; – where we have no "
             "such score.")
CLAIMS_POINTER = ("Ours on these claims: the tests between our variants under \"What the data "
                  "supports\" below; a difference is claimed only where it survives the "
                  "correction for the number of tests.")


@dataclass(frozen=True)
class SeedTable:
    """One table of the seed report as shown: its title, header, rows and why a cell of ours
    is "–"."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


@dataclass(frozen=True)
class SeedSection:
    """What both pages open with."""

    heading: str
    conditions: str
    tables: list[SeedTable]
    claims: list[str]
    protocol: list[str]


def verbatim(value: float | int | str) -> str:
    """A value of a seed report's table as it printed it: a number as Python prints it (so
    the block writes one with trailing zeros as a string), a string as it is."""
    return value if isinstance(value, str) else str(value)


def seed_table(table: ReportTable, metrics: dict[str, dict[str, Any]],
               absent: dict[str, str] | None = None) -> SeedTable:
    """``table`` with its values verbatim, then the row of ours it names and our score(s).
    ``metrics``: the aggregated metrics per variant; ``absent``: why a score was not computed
    (score key -> reason), for the notes under the table."""
    absent = absent or {}
    column = {c.key: c for c in report_columns()}  # each score's label and format
    ours_rows = [r.ours for r in table.rows if r.ours]
    per_column = bool(ours_rows) and isinstance(ours_rows[0].metric, tuple)
    shown = [i for i, _ in enumerate(table.columns)
             if any(o.metric[i] for o in ours_rows)] if per_column else []
    header = ["its row", *table.columns]
    if ours_rows:
        header += ["our row", *([f"ours: {table.columns[i]}" for i in shown]
                                if per_column else ["ours"])]
    rows: list[list[str]] = []
    notes: dict[str, list[str]] = {}  # why -> what lacks a score for that reason
    for row in table.rows:
        cells = [row.label, *map(verbatim, row.values)]
        if not ours_rows:
            rows.append(cells)
            continue
        if row.ours is None:
            rows.append(cells + ["–"] * (1 + (len(shown) if per_column else 1)))
            continue
        ours = row.ours
        keys = [ours.metric[i] for i in shown] if per_column else [ours.metric]
        where = f"{ours.variant} {BY_KEY[ours.direction].label}"
        cells.append(where if per_column else f"{where} {column[ours.metric].label}")
        scores = metrics.get(ours.variant, {}).get(ours.direction, {})
        for key in keys:
            cell = with_std_ci(scores, key, column[key].fmt) if key else "–"
            cells.append(cell)
            if key and cell == "–":
                what, why = _why(ours.variant, key, metrics, absent)
                notes.setdefault(why, [])
                notes[why] += [what] if what not in notes[why] else []
        rows.append(cells)
    return SeedTable(table.title, header, rows,
                     [f"{', '.join(what)}: {why}" for why, what in notes.items()])


def _why(variant: str, key: str, metrics: dict[str, dict], absent: dict[str, str]
         ) -> tuple[str, str]:
    """What has no score of ours, and why."""
    if variant not in metrics:
        return variant, "not a variant of this study's params.yaml"
    if key in absent:
        return key, absent[key]
    return f"{key} of {variant}", f"not in reports/metrics/{variant}.json"


def seed_section(report: SeedReport, metrics: dict[str, dict[str, Any]],
                 absent: dict[str, str] | None = None) -> SeedSection:
    """The section for ``report`` with ours from ``metrics`` (see :func:`seed_table`)."""
    return SeedSection(heading=f"Seed report ({report.report})", conditions=report.conditions,
                       tables=[seed_table(t, metrics, absent) for t in report.tables],
                       claims=list(report.claims), protocol=list(report.protocol))


def _has_ours(section: SeedSection) -> bool:
    return any("our row" in t.header for t in section.tables)


def section_markdown(section: SeedSection) -> list[str]:
    """The section's lines in ``summary.md``."""
    md = [f"## {section.heading}", "", f"Its conditions: {section.conditions}", ""]
    md += [OURS_NOTE, ""] if _has_ours(section) else []
    for table in section.tables:
        md += [f"### {table.title}", "", markdown_table(table.header, table.rows), ""]
        md += [*[f"- – {note}" for note in table.notes], ""] if table.notes else []
    if section.claims:
        md += ["### Its claims", "", *[f"- “{claim}”" for claim in section.claims], "",
               CLAIMS_POINTER, ""]
    md += ["### What differs in protocol", "", *[f"- {line}" for line in section.protocol], ""]
    return md


def section_html(section: SeedSection) -> str:
    """The section in ``index.html``, every text HTML-escaped."""
    esc = html.escape
    out = [f"<h2>{esc(section.heading)}</h2>",
           f"<p><b>Its conditions:</b> {esc(section.conditions)}</p>"]
    out += [f"<p>{esc(OURS_NOTE)}</p>"] if _has_ours(section) else []
    for table in section.tables:
        out += [f"<h3>{esc(table.title)}</h3>", html_table(table.header, table.rows)]
        out += ["<ul>" + "".join(f"<li>– {esc(n)}</li>" for n in table.notes) + "</ul>"
                ] if table.notes else []
    if section.claims:
        out += ["<h3>Its claims</h3><ul>"
                + "".join(f"<li>“{esc(c)}”</li>" for c in section.claims) + "</ul>",
                f"<p>{esc(CLAIMS_POINTER)}</p>"]
    out += ["<h3>What differs in protocol</h3><ul>"
            + "".join(f"<li>{esc(line)}</li>" for line in section.protocol) + "</ul>"]
    return "\n".join(out) + "\n"
