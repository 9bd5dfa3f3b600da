"""The study report: a metrics table, loss curves, SSIM distributions and the last sample grids
of every variant, as ``reports/index.html`` (figures beside it) and ``reports/summary.md``; a
study run from a preset with a seed report opens with that report's numbers beside ours
(:mod:`.seed_report`).

:func:`build_report` gathers what the stages wrote, draws the figures (:mod:`.figures`) and
renders both pages: the table comes from :mod:`.tables`, the HTML page is
``templates/index.html`` with its ``$`` fields filled in."""

from __future__ import annotations

import html
import os
import shutil
import string
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cyclelab.io import atomic_dir, read_json, write_text
from cyclelab.metric_registry import compared
from cyclelab.presets import SeedReport
from cyclelab.report.aggregate import family_sentence, stage_name
from cyclelab.report.figures import (
    plot_curve,
    plot_d_accuracy,
    plot_distribution,
    plot_losses,
    plot_ssim,
)
from cyclelab.report.seed_report import (
    SeedSection,
    section_html,
    section_markdown,
    seed_section,
)
from cyclelab.report.tables import (
    DIRECTIONS,
    html_table,
    markdown_table,
    metrics_table,
    read_csv,
)

# (figure key, its heading), in the pages' order, after one figure per compared metric
TITLES = (("losses", "Losses per epoch"),
          ("d_accuracy", "Discriminator accuracy per epoch (solid: real called real; dashed: "
                         "translated called fake)"),
          ("curve", "FID during training (fixed validation subset, eval.every_k_epochs)"),
          ("ssim_curve", "SSIM of real vs translated during training (the same subset)"),
          ("ssim", "SSIM per test image"),
          ("ssim_lines", "SSIM per test image, in test-split order (mean over seeds)"))
HOW_TO_READ = (
    "FID/KID compare translated images with the real test images of the target domain "
    "(Inception features, lower is better); brackets hold the 95 % CI (bootstrap over test "
    "images with one seed, t-interval over seeds with several). Read them against the two "
    "lines below the variants: *doing nothing* scores the untranslated source images, and a "
    "translation above it (⚠) is worse than no translation; the *floor* scores real images "
    "against real images at the same sample size, the best any translation can reach at "
    "this N. SSIM compares each image with its translation (structure kept); cycle "
    "SSIM/PSNR with its reconstruction after a round trip; ± is the std over seeds. A "
    "difference between variants is claimed only where the test below finds one after "
    "Holm–Bonferroni correction over all of the report's comparisons; otherwise it says "
    "\"no significant difference\".")
NOTHING_TO_COMPARE = "Only one variant: nothing to compare."
SAMPLES_NOTE = "Last epoch of each run; rows are labelled on the image."


@dataclass(frozen=True)
class Page:
    """What both pages show; ``figures`` and ``samples`` map a key or run to its image's path
    relative to the page."""

    variants: dict[str, str]
    header: list[str]
    rows: list[list[str]]
    verdicts: list[str]
    left_out: list[str]
    study: dict[str, Any]
    figures: dict[str, str]
    samples: dict[str, str]
    seed_report: SeedSection | None = None


def figure_titles() -> tuple[tuple[str, str], ...]:
    """(figure key, its heading) of every figure, in the pages' order: one per metric the
    report compares between variants (:func:`~cyclelab.metric_registry.compared`), then
    :data:`TITLES`."""
    return tuple((name, f"{name.upper()} by variant (95 % CI; dashed: doing nothing, dotted: "
                        "floor)") for name in compared()) + TITLES


def last_sample(samples_dir: Path) -> Path | None:
    """The sample grid of the last epoch of one run."""
    grids = sorted(samples_dir.glob("epoch_*.png"))
    return grids[-1] if grids else None


def verdict_lines(metrics: dict[str, dict], comparisons: list[dict]) -> list[str]:
    """What a reader may conclude: translations worse than doing nothing, how the comparisons
    were corrected for their number, and for each pair of variants and direction whether they
    differ (only where the corrected test says so; "no significant difference" otherwise)."""
    lines = []
    for variant, data in metrics.items():
        for direction, label in DIRECTIONS:
            scores = data.get(direction, {})
            if scores.get("worse_than_identity"):
                lines.append(f"⚠ {variant} {label}: FID {scores['fid']:.1f} is worse than doing "
                             f"nothing ({scores['fid_identity']:.1f} for the untranslated "
                             "images).")
    family = family_sentence(comparisons)
    lines += [family] if family else []
    lines += [c["sentence"] for c in comparisons]
    return lines


def draw_figures(metrics: dict[str, dict], histories: dict[str, list[dict]],
                 per_image: dict[str, list[dict]], grids: dict[str, tuple[Path, str]],
                 figures: Path) -> dict[str, str]:
    """Replace ``figures`` with the report's figures and copies of the sample ``grids`` (name
    -> its grid and the copy's file name). Returns the file name of each figure drawn."""
    with atomic_dir(figures) as tmp:
        ssim_box, ssim_lines = plot_ssim(per_image, tmp / "ssim.png", tmp / "ssim_lines.png")
        made = {name: plot_distribution(metrics, name, name.upper(), tmp / f"{name}.png")
                for name in compared()}
        made |= {
            "losses": plot_losses(histories, tmp / "losses.png"),
            "d_accuracy": plot_d_accuracy(histories, tmp / "d_accuracy.png"),
            "curve": plot_curve(histories, tmp / "fid_curve.png"),
            "ssim_curve": plot_curve(histories, tmp / "ssim_curve.png", "ssim",
                                     "SSIM of real vs translated (higher is better)"),
            "ssim": ssim_box,
            "ssim_lines": ssim_lines,
        }
        for source, file in grids.values():
            shutil.copyfile(source, tmp / file)
    return {k: v.name for k, v in made.items() if v is not None}


def summary_markdown(page: Page) -> str:
    """``summary.md``: the seed report beside ours (a preset's study), the table, the verdicts,
    what was left out, the study, the figures."""
    md = ["# cyclelab study report", "",
          *(section_markdown(page.seed_report) if page.seed_report else []), HOW_TO_READ, "",
          markdown_table(page.header, page.rows), "", "## What the data supports", "",
          *[f"- {line}" for line in page.verdicts or [NOTHING_TO_COMPARE]], "",
          *(["## Left out", "", *[f"- {line}" for line in page.left_out], ""]
            if page.left_out else []),
          "## Study", "", *[f"- {k}: {v}" for k, v in page.study.items()], ""]
    for key, title in figure_titles():
        if key in page.figures:
            md += [f"## {title}", "", f"![{title}]({page.figures[key]})", ""]
    md += ["## Samples", "", SAMPLES_NOTE, ""]
    for name, file in page.samples.items():
        md += [f"### {name}", "", f"![{name}]({file})", ""]
    return "\n".join(md)


def index_html(page: Page) -> str:
    """``index.html``: ``templates/index.html`` filled in, every text HTML-escaped."""
    esc = html.escape
    left_out = "<h2>Left out</h2><ul>" + "".join(
        f"<li>{esc(x)}</li>" for x in page.left_out) + "</ul>" if page.left_out else ""
    template = resources.files("cyclelab.report").joinpath("templates", "index.html")
    return string.Template(template.read_text(encoding="utf-8")).substitute(
        seed_report=section_html(page.seed_report) if page.seed_report else "",
        verdicts="".join(f"<li>{esc(x)}</li>" for x in page.verdicts)
        or f"<li>{NOTHING_TO_COMPARE}</li>",
        left_out=left_out,
        variants="".join(f"<li><b>{esc(v)}</b>: {esc(d)}</li>" for v, d in page.variants.items()),
        metrics_table=html_table(page.header, page.rows),
        how_to_read=esc(HOW_TO_READ),
        study="".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                      for k, v in page.study.items()),
        figures="".join(f'<h2>{esc(t)}</h2><img src="{page.figures[k]}" alt="{esc(t)}">'
                        for k, t in figure_titles() if k in page.figures),
        samples="".join(f'<figure><figcaption>{esc(n)}</figcaption>'
                        f'<img class="px" src="{f}" alt="{esc(n)}"></figure>'
                        for n, f in page.samples.items()))


def build_report(variants: dict[str, str], reports: Path, figures: Path,
                 study: dict[str, Any] | None = None, seeds: list[int] | None = None,
                 comparisons: list[dict] | None = None,
                 finetunes: Collection[str] = (), seed_report: SeedReport | None = None,
                 absent: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``figures/``, ``summary.md`` and ``index.html`` under ``reports`` from the
    aggregated metrics (``metrics/<variant>.json``), per-seed plots, per-image CSVs and samples
    the other stages wrote. ``variants`` maps names to their descriptions; ``study`` holds facts
    shown at the top; ``comparisons`` the significance tests (:mod:`.aggregate`);
    ``finetunes`` the variants that are fine-tunes (their stages have their own names);
    ``seed_report`` the seed report both pages open with, ours beside its rows (``absent``:
    why a score was not computed, score key -> reason, said under a "–" of ours).

    A variant without its metrics file is a DataError naming the file and the stage to run;
    a missing training-history or per-image CSV only feeds a figure, so the report says in a
    "Left out" section which file is missing and what it leaves out. Returns the metrics."""
    study, seeds, comparisons = study or {}, seeds or [0], comparisons or []
    metrics = {v: read_json(reports / "metrics" / f"{v}.json",
                            f"dvc repro {stage_name('compare', v, finetunes)}")
               for v in variants}
    left_out: list[str] = []

    def optional_csv(path: Path, what: str, stage: str) -> list[dict[str, float | str]]:
        if path.is_file():
            return read_csv(path)
        left_out.append(f"{path}: missing, so {what} is left out (`dvc repro {stage}` "
                        "writes it).")
        return []

    runs = {f"{v}/s{s}" if len(seeds) > 1 else v: (v, s) for v in variants for s in seeds}
    histories = {name: optional_csv(reports / "plots" / "train" / v / f"s{s}.csv",
                                    f"{name} of the loss and FID curves",
                                    stage_name("train", v, finetunes, s))
                 for name, (v, s) in runs.items()}
    per_image = {v: [row for s in seeds for row in optional_csv(
                     reports / "eval" / v / f"s{s}.csv", f"{v} seed {s} of the SSIM figures",
                     stage_name("evaluate", v, finetunes, s))]
                 for v in variants}
    header, rows = metrics_table(metrics)
    verdicts = verdict_lines(metrics, comparisons)
    grids = {}
    for name, (v, s) in runs.items():
        if (grid := last_sample(reports / "samples" / v / f"s{s}")) is not None:
            grids[name] = grid, f"samples_{v}_s{s}.png".replace("/", "_")
    for domain in ("A", "B"):
        if (ae := reports / "samples" / f"ae_{domain}.png").exists():
            grids[f"autoencoder {domain}"] = ae, ae.name
    made = draw_figures(metrics, histories, per_image, grids, figures)
    rel = os.path.relpath(figures, reports)
    page = Page(variants=variants, header=header, rows=rows, verdicts=verdicts,
                left_out=left_out, study=study,
                figures={k: f"{rel}/{file}" for k, file in made.items()},
                samples={name: f"{rel}/{file}" for name, (_, file) in grids.items()},
                seed_report=seed_section(seed_report, metrics, absent) if seed_report else None)
    write_text(reports / "summary.md", summary_markdown(page))
    write_text(reports / "index.html", index_html(page))
    return metrics
