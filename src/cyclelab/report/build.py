"""The study report: a metrics table, loss curves, SSIM distributions and the last sample grids
of every variant, as ``reports/index.html`` (figures beside it) and ``reports/summary.md``."""

from __future__ import annotations

import csv
import html
import math
import os
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cyclelab import directions  # noqa: E402
from cyclelab.io import atomic_dir, read_json, write_text  # noqa: E402
from cyclelab.report.aggregate import family_sentence, stage_name  # noqa: E402

DIRECTIONS = tuple((d.key, d.label) for d in directions.DIRECTIONS)  # (key, label) pairs
# (key, label, format, lower is better)
DISTRIBUTION_COLUMNS = (("fid", "FID ↓", "{:.1f}"), ("kid", "KID ↓", "{:.4f}"))
PAIRED_COLUMNS = (("is", "IS ↑", "{:.2f}"), ("gms", "GMS ↓", "{:.3f}"),
                  ("fid_rec", "FID rec ↓", "{:.1f}"), ("ssim", "SSIM ↑", "{:.3f}"),
                  ("ssim_cycle", "cycle SSIM ↑", "{:.3f}"),
                  ("psnr_cycle", "cycle PSNR ↑", "{:.2f}"),
                  ("label_accuracy", "label acc. ↑", "{:.3f}"),
                  # seeds/000's pairs (eval.fid_cycle): distance from the input, not quality
                  ("fid_real_fake", "FID real–fake", "{:.1f}"),
                  ("fid_rec_fake", "FID rec–fake", "{:.1f}"),
                  ("ssim_rec_fake", "SSIM rec–fake", "{:.3f}"))
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
    text = _fmt(value, pattern)
    if isinstance(ci, list) and len(ci) == 2 and text != "–":
        text += f" [{_fmt(ci[0], pattern)}, {_fmt(ci[1], pattern)}]"
    return text


def with_std(scores: dict, key: str, pattern: str) -> str:
    text = _fmt(scores.get(key), pattern)
    std = scores.get(f"{key}_std")
    if scores.get(f"{key}_seeds") and len(scores[f"{key}_seeds"]) > 1 and text != "–":
        text += f" ± {_fmt(std, pattern)}"
    return text


def metrics_table(metrics: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one per variant (mean with 95 % CI, ± std over seeds for paired
    scores; ⚠ where a translation scores worse than doing nothing), then the identity and
    floor lines, per direction."""
    header = ["variant", "seeds"]
    for _, label in DIRECTIONS:
        header += [f"{label} {name}" for _, name, _ in DISTRIBUTION_COLUMNS + PAIRED_COLUMNS]
    rows = []
    for variant, data in metrics.items():
        row = [variant, str(data.get("n_seeds", 1))]
        for direction, _ in DIRECTIONS:
            scores = data.get(direction, {})
            for key, _, pattern in DISTRIBUTION_COLUMNS:
                cell = with_ci(scores.get(key), scores.get(f"{key}_ci95"), pattern)
                if key == "fid" and scores.get("worse_than_identity"):
                    cell = "⚠ " + cell
                row.append(cell)
            row += [with_std(scores, key, pattern) for key, _, pattern in PAIRED_COLUMNS]
        rows.append(row)
    first = next(iter(metrics.values()), {})
    for line, label in LINES:
        row = [label, "–"]
        for direction, _ in DIRECTIONS:
            scores = first.get(direction, {})
            for key, _, pattern in DISTRIBUTION_COLUMNS + PAIRED_COLUMNS:
                row.append(with_ci(scores.get(f"{key}_{line}"),
                                    scores.get(f"{key}_{line}_ci95"), pattern))
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


def plot_losses(histories: dict[str, list[dict]], path: Path) -> Path | None:
    """Per-epoch generator, discriminator and cycle losses, one line per variant."""
    if not any(histories.values()):
        return None
    keys = (("loss_G", "generator total"), ("loss_D", "discriminators"),
            ("loss_cycle_a", "cycle A"), ("loss_cycle_b", "cycle B"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for variant, rows in histories.items():
            xs = [r["epoch"] for r in rows if key in r]
            ax.plot(xs, [r[key] for r in rows if key in r], marker="o", label=variant)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curve(histories: dict[str, list[dict]], path: Path, key: str = "fid",
               label: str = "FID (lower is better)") -> Path | None:
    """``key`` (fid, kid, ssim, psnr) during training on the fixed validation subset
    (``eval.every_k_epochs``), per run; None when no epoch row has it."""
    if not any(f"{key}_{DIRECTIONS[0][0]}" in r for rows in histories.values() for r in rows):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, (direction, title) in zip(axes, DIRECTIONS, strict=True):
        for run, rows in histories.items():
            points = [(r["epoch"], r[f"{key}_{direction}"]) for r in rows
                      if isinstance(r.get(f"{key}_{direction}"), float)]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=run)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{label}, validation subset")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_distribution(metrics: dict[str, dict], key: str, label: str,
                      path: Path) -> Path | None:
    """``key`` (fid or kid) of every variant per direction: bars with 95 % CI error bars, and
    the identity (doing nothing) and floor (real vs real) lines."""
    if not any(key in m.get(d, {}) for m in metrics.values() for d, _ in DIRECTIONS):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(2.5 + 2.4 * len(metrics), 3.4), sharey=True)
    for ax, (direction, title) in zip(axes, DIRECTIONS, strict=True):
        scores = [m.get(direction, {}) for m in metrics.values()]
        values = [s.get(key, float("nan")) for s in scores]
        errors = [[0.0, 0.0] if not isinstance(s.get(f"{key}_ci95"), list) else
                  [v - s[f"{key}_ci95"][0], s[f"{key}_ci95"][1] - v]
                  for s, v in zip(scores, values, strict=True)]
        ax.bar(range(len(values)), values, 0.6, yerr=np.array(errors).T, capsize=4,
               color="#4c72b0")
        first = scores[0] if scores else {}
        for line, style, color, text in (("identity", "--", "#c44e52", "doing nothing"),
                                         ("floor", ":", "#55a868", "floor (real vs real)")):
            if isinstance(first.get(f"{key}_{line}"), int | float):
                ax.axhline(first[f"{key}_{line}"], ls=style, color=color, label=text)
        ax.set_xticks(range(len(values)), list(metrics))
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"{label} (lower is better)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def image_means(rows: list[dict], key: str) -> list[float]:
    """``key`` per test image (``file``) in the order the images first appear (the test
    split's), averaged over the seeds whose rows repeat the image."""
    by_image: dict[str, list[float]] = {}
    for r in rows:
        by_image.setdefault(str(r.get("file")), []).append(r[key])
    return [sum(v) / len(v) for v in by_image.values()]


def plot_ssim(per_image: dict[str, list[dict]], box_path: Path,
              line_path: Path) -> tuple[Path | None, Path | None]:
    """Per-image SSIM(real, translated) by variant and direction (seeds/000 Figs. 2–9): box
    plots (all seeds pooled), and lines of each test image's value (its mean over seeds) in
    test-image order, as the report's line plots."""
    data, labels, ordered = [], [], []
    for variant, rows in per_image.items():
        for direction, label in DIRECTIONS:
            kept = [r for r in rows if r.get("direction") == direction
                    and isinstance(r.get("ssim"), float)]
            if kept:
                data.append([r["ssim"] for r in kept])
                labels.append((variant, direction, label))
                ordered.append(image_means(kept, "ssim"))
    if not data:
        return None, None
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(data), 3.2))
    ax.boxplot(data)
    ax.set_xticks(range(1, len(labels) + 1), [f"{v}\n{lab}" for v, _, lab in labels])
    ax.set_ylabel("SSIM(real, translated)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(box_path, dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, (direction, title) in zip(axes, DIRECTIONS, strict=True):
        for values, (variant, d, _) in zip(ordered, labels, strict=True):
            if d == direction:
                ax.plot(values, label=variant, linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("test image (test-split order; mean over seeds)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SSIM(real, translated)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(line_path, dpi=100)
    plt.close(fig)
    return box_path, line_path


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


def build_report(variants: dict[str, str], reports: Path, figures: Path,
                 study: dict[str, Any] | None = None, seeds: list[int] | None = None,
                 comparisons: list[dict] | None = None,
                 finetunes: Collection[str] = ()) -> dict[str, Any]:
    """Write ``figures/``, ``summary.md`` and ``index.html`` under ``reports`` from the
    aggregated metrics (``metrics/<variant>.json``), per-seed plots, per-image CSVs and samples
    the other stages wrote. ``variants`` maps names to their descriptions; ``study`` holds facts
    shown at the top; ``comparisons`` the significance tests (:mod:`.aggregate`);
    ``finetunes`` the variants that are fine-tunes (their stages have their own names).

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

    with atomic_dir(figures) as tmp:
        ssim_box, ssim_lines = plot_ssim(per_image, tmp / "ssim.png", tmp / "ssim_lines.png")
        made = {
            "fid": plot_distribution(metrics, "fid", "FID", tmp / "fid.png"),
            "kid": plot_distribution(metrics, "kid", "KID", tmp / "kid.png"),
            "losses": plot_losses(histories, tmp / "losses.png"),
            "curve": plot_curve(histories, tmp / "fid_curve.png"),
            "ssim_curve": plot_curve(histories, tmp / "ssim_curve.png", "ssim",
                                     "SSIM of real vs translated (higher is better)"),
            "ssim": ssim_box,
            "ssim_lines": ssim_lines,
        }
        samples = {}
        for name, (v, s) in runs.items():
            run = f"{v}/s{s}"
            grid = last_sample(reports / "samples" / run)
            if grid is not None:
                file = f"samples_{run.replace('/', '_')}.png"
                shutil.copyfile(grid, tmp / file)
                samples[name] = file
        for domain in ("A", "B"):
            ae = reports / "samples" / f"ae_{domain}.png"
            if ae.exists():
                shutil.copyfile(ae, tmp / f"ae_{domain}.png")
                samples[f"autoencoder {domain}"] = f"ae_{domain}.png"
    rel = os.path.relpath(figures, reports)
    figures_made = {k: f"{rel}/{v.name}" for k, v in made.items() if v is not None}
    titles = (("fid", "FID by variant (95 % CI; dashed: doing nothing, dotted: floor)"),
              ("kid", "KID by variant (95 % CI; dashed: doing nothing, dotted: floor)"),
              ("losses", "Losses per epoch"),
              ("curve", "FID during training (fixed validation subset, eval.every_k_epochs)"),
              ("ssim_curve", "SSIM of real vs translated during training (the same subset)"),
              ("ssim", "SSIM per test image"),
              ("ssim_lines", "SSIM per test image, in test-split order (mean over seeds)"))
    how_to_read = (
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

    md = ["# cyclelab study report", "", how_to_read, "",
          markdown_table(header, rows), "", "## What the data supports", "",
          *[f"- {line}" for line in verdicts or ["Only one variant: nothing to compare."]], "",
          *(["## Left out", "", *[f"- {line}" for line in left_out], ""] if left_out else []),
          "## Study", "", *[f"- {k}: {v}" for k, v in study.items()], ""]
    for key, title in titles:
        if key in figures_made:
            md += [f"## {title}", "", f"![{title}]({figures_made[key]})", ""]
    md += ["## Samples", "", "Last epoch of each run; rows are labelled on the image.", ""]
    for name, file in samples.items():
        md += [f"### {name}", "", f"![{name}]({rel}/{file})", ""]
    write_text(reports / "summary.md", "\n".join(md))

    described = "".join(f"<li><b>{html.escape(v)}</b>: {html.escape(d)}</li>"
                        for v, d in variants.items())
    figs = "".join(f'<h2>{html.escape(t)}</h2><img src="{figures_made[k]}" alt="{html.escape(t)}">'
                   for k, t in titles if k in figures_made)
    grids = "".join(f'<figure><figcaption>{html.escape(n)}</figcaption>'
                    f'<img class="px" src="{rel}/{f}" alt="{html.escape(n)}"></figure>'
                    for n, f in samples.items())
    facts = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in study.items())
    verdict_html = "".join(f"<li>{html.escape(x)}</li>" for x in verdicts) or \
        "<li>Only one variant: nothing to compare.</li>"
    left_out_html = "<h2>Left out</h2><ul>" + "".join(
        f"<li>{html.escape(x)}</li>" for x in left_out) + "</ul>" if left_out else ""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>cyclelab report</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;
text-align:right}}td:first-child{{text-align:left}}img{{max-width:100%}}
img.px{{image-rendering:pixelated;max-width:640px}}figure{{display:inline-block;margin:.5rem}}
</style></head><body>
<h1>cyclelab study report</h1>
<h2>What the data supports</h2><ul>{verdict_html}</ul>{left_out_html}
<p>Variants:</p><ul>{described}</ul>
<h2>Metrics (test split)</h2>{html_table(header, rows)}
<p>{html.escape(how_to_read)}</p>
<h2>Study</h2><table>{facts}</table>
<p>Per-run details: <code>mlflow ui</code> in the repository root; experiments:
<code>dvc exp show</code>.</p>
{figs}<h2>Samples</h2><p>Last epoch of each run; rows are labelled on the image.</p>{grids}
</body></html>
"""
    write_text(reports / "index.html", page)
    return metrics
