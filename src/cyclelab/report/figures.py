"""The report's figures (matplotlib, PNG): losses and the validation curves per epoch, FID/KID
per variant with their CIs and reference lines, SSIM per test image; each function draws one
figure from what the stages wrote and returns its path, or None when there is nothing to draw."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cyclelab.report.tables import DIRECTIONS  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    _save(fig, path)
    return path


def plot_d_accuracy(histories: dict[str, list[dict]], path: Path) -> Path | None:
    """Per epoch, how often each discriminator calls real images real (solid) and translated
    images fake (dashed), one colour per variant (seeds/002 Figs. 10 and 13). None when no
    history has the per-discriminator columns (runs trained before they existed)."""
    panels = (("a", "D_a (domain A)"), ("b", "D_b (domain B)"))
    if not any(f"acc_D_{d}_real" in r for rows in histories.values() for r in rows for d in "ab"):
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), sharey=True)
    for ax, (d, title) in zip(axes, panels, strict=True):
        for i, (variant, rows) in enumerate(histories.items()):
            for side, style in (("real", "-"), ("fake", "--")):
                key = f"acc_D_{d}_{side}"
                xs = [r["epoch"] for r in rows if key in r]
                ax.plot(xs, [r[key] for r in rows if key in r], style, marker="o",
                        color=f"C{i}", label=f"{variant}, {side}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.05, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize="small")
    _save(fig, path)
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
    _save(fig, path)
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
    _save(fig, path)
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
    _save(fig, box_path)
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
    _save(fig, line_path)
    return box_path, line_path
