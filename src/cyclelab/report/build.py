"""The study report: a metrics table, loss curves, SSIM distributions and the last sample grids
of every variant, as ``reports/index.html`` (figures beside it) and ``reports/summary.md``."""

from __future__ import annotations

import csv
import html
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cyclelab.io import atomic_dir, write_text  # noqa: E402

DIRECTIONS = (("A_to_B", "A→B"), ("B_to_A", "B→A"))
COLUMNS = (("fid", "FID ↓", "{:.2f}"), ("kid", "KID ↓", "{:.4f}"), ("ssim", "SSIM ↑", "{:.3f}"),
           ("ssim_cycle", "cycle SSIM ↑", "{:.3f}"), ("psnr_cycle", "cycle PSNR ↑", "{:.2f}"))


def read_csv(path: Path) -> list[dict[str, float | str]]:
    """Rows of a CSV with numeric-looking fields as floats; [] if the file is missing."""
    if not path.exists():
        return []
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


def metrics_table(metrics: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per variant) of the headline metrics, both directions."""
    header = ["variant"] + [f"{label} {name}" for _, name, _ in COLUMNS for _, label in DIRECTIONS]
    rows = []
    for variant, data in metrics.items():
        row = [variant]
        for key, _, pattern in COLUMNS:
            for direction, _ in DIRECTIONS:
                row.append(_fmt(data.get(direction, {}).get(key), pattern))
        rows.append(row)
    return header, rows


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


def plot_fid(metrics: dict[str, dict], path: Path) -> Path | None:
    """FID of every variant in both directions (bars)."""
    if not metrics:
        return None
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(metrics), 3.2))
    width = 0.38
    for i, (direction, label) in enumerate(DIRECTIONS):
        values = [m.get(direction, {}).get("fid", float("nan")) for m in metrics.values()]
        xs = [j + (i - 0.5) * width for j in range(len(metrics))]
        ax.bar(xs, values, width, label=label)
    ax.set_xticks(range(len(metrics)), list(metrics))
    ax.set_ylabel("FID (lower is better)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ssim(per_image: dict[str, list[dict]], path: Path) -> Path | None:
    """Box plots of per-image SSIM(real, translated) by variant and direction (seeds/000)."""
    data, labels = [], []
    for variant, rows in per_image.items():
        for direction, label in DIRECTIONS:
            values = [r["ssim"] for r in rows if r.get("direction") == direction
                      and isinstance(r.get("ssim"), float)]
            if values:
                data.append(values)
                labels.append(f"{variant}\n{label}")
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(data), 3.2))
    ax.boxplot(data)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.set_ylabel("SSIM(real, translated)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def last_sample(samples_dir: Path) -> Path | None:
    """The sample grid of the last epoch of a variant."""
    grids = sorted(samples_dir.glob("epoch_*.png"))
    return grids[-1] if grids else None


def best_lines(metrics: dict[str, dict]) -> list[str]:
    """One sentence per direction naming the variant with the lowest FID."""
    lines = []
    for direction, label in DIRECTIONS:
        scored = [(m[direction]["fid"], v) for v, m in metrics.items()
                  if isinstance(m.get(direction, {}).get("fid"), int | float)]
        if len(scored) > 1:
            fid, variant = min(scored)
            lines.append(f"Lowest FID {label}: {variant} ({fid:.2f}).")
    return lines


def build_report(variants: dict[str, str], reports: Path, figures: Path,
                 study: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``figures/``, ``summary.md`` and ``index.html`` under ``reports`` from the metrics,
    plots, per-image CSVs and samples the other stages wrote. ``variants`` maps names to their
    descriptions; ``study`` holds facts shown at the top (dataset, image size, epochs, ...).
    Returns the metrics gathered."""
    study = study or {}
    metrics = {}
    for variant in variants:
        path = reports / "metrics" / f"{variant}.json"
        if path.exists():
            metrics[variant] = json.loads(path.read_text())
    histories = {v: read_csv(reports / "plots" / f"train_{v}.csv") for v in variants}
    per_image = {v: read_csv(reports / "eval" / f"{v}.csv") for v in variants}
    header, rows = metrics_table(metrics)

    with atomic_dir(figures) as tmp:
        made = {
            "losses": plot_losses(histories, tmp / "losses.png"),
            "fid": plot_fid(metrics, tmp / "fid.png"),
            "ssim": plot_ssim(per_image, tmp / "ssim.png"),
        }
        samples = {}
        for variant in variants:
            grid = last_sample(reports / "samples" / variant)
            if grid is not None:
                shutil.copyfile(grid, tmp / f"samples_{variant}.png")
                samples[variant] = f"samples_{variant}.png"
        for domain in ("A", "B"):
            ae = reports / "samples" / f"ae_{domain}.png"
            if ae.exists():
                shutil.copyfile(ae, tmp / f"ae_{domain}.png")
                samples[f"autoencoder {domain}"] = f"ae_{domain}.png"
    rel = os.path.relpath(figures, reports)
    figures_made = {k: f"{rel}/{v.name}" for k, v in made.items() if v is not None}

    md = ["# cyclelab study report", "",
          "Translation quality on the test split of each domain. FID/KID compare translated "
          "images with the real images of the target domain (Inception features, lower is "
          "better); SSIM compares each image with its translation (structure kept) and, for "
          "cycle SSIM/PSNR, with its reconstruction after a round trip.", "",
          markdown_table(header, rows), "", *best_lines(metrics), "",
          *[f"- {k}: {v}" for k, v in study.items()], ""]
    for key, title in (("fid", "FID"), ("losses", "Losses"), ("ssim", "SSIM per image")):
        if key in figures_made:
            md += [f"## {title}", "", f"![{title}]({figures_made[key]})", ""]
    md += ["## Samples", "", "Rows: real A, A→B, A→B→A, real B, B→A, B→A→B.", ""]
    for name, file in samples.items():
        md += [f"### {name}", "", f"![{name}]({rel}/{file})", ""]
    write_text(reports / "summary.md", "\n".join(md))

    described = "".join(f"<li><b>{html.escape(v)}</b>: {html.escape(d)}</li>"
                        for v, d in variants.items())
    figs = "".join(f'<h2>{html.escape(t)}</h2><img src="{figures_made[k]}" alt="{t}">'
                   for k, t in (("fid", "FID by variant"), ("losses", "Losses per epoch"),
                                ("ssim", "SSIM per test image")) if k in figures_made)
    grids = "".join(f'<figure><figcaption>{html.escape(n)}</figcaption>'
                    f'<img class="px" src="{rel}/{f}" alt="{html.escape(n)}"></figure>'
                    for n, f in samples.items())
    facts = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in study.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>cyclelab report</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;
text-align:right}}td:first-child{{text-align:left}}img{{max-width:100%}}
img.px{{image-rendering:pixelated;width:520px}}figure{{display:inline-block;margin:.5rem}}
</style></head><body>
<h1>cyclelab study report</h1>
<p>{" ".join(html.escape(x) for x in best_lines(metrics))}</p>
<p>Variants:</p><ul>{described}</ul>
<h2>Metrics (test split)</h2>{html_table(header, rows)}
<h2>Study</h2><table>{facts}</table>
<p>FID/KID: translated vs real images of the target domain (lower is better). SSIM: each test
image vs its translation; cycle SSIM/PSNR: vs its reconstruction. Per-run details:
<code>mlflow ui</code> in the repository root; experiments: <code>dvc exp show</code>.</p>
{figs}<h2>Samples</h2><p>Rows: real A, A→B, A→B→A, real B, B→A, B→A→B.</p>{grids}
</body></html>
"""
    write_text(reports / "index.html", page)
    return metrics
