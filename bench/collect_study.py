"""Collect a finished (or partly finished) study's numbers for its docs page.

    python bench/collect_study.py STUDY_REPO docs/studies/seed000

reads the study's reports (run `dvc repro` there first, with study.seeds listing the
replicates that finished; a partial study without the report stage's outputs gets its SSIM and
curve figures drawn here from the runs, and no comparisons): reports/metrics/<variant>.json
(the compare stage's aggregate over seeds) and reports/comparisons.json (the report stage's
corrected tests), and writes
OUT/metrics.json and OUT/comparisons.json (what the page's tables come from), OUT/runs.json (per
run: epochs, training seconds from the epoch rows, precision, device), OUT/seeds/ (each
replicate's own scores: reports/seeds/<variant>/s<seed>.json) and small figures: the last sample
grid of each run and the report's figures. Then print the tables for the page
(python -m cyclelab.report.study_page OUT prints them again).

    python bench/collect_study.py --add STUDY_REPO docs/studies/seed000

adds the replicates of a study run elsewhere or later (say seed 2 in its own clone, after seeds
0 and 1 landed) to OUT: their scores, runs and sample grids join OUT's, and OUT/metrics.json and
OUT/comparisons.json are recomputed from every replicate in OUT/seeds/ with the compare and
report stages' own code (the mean, std and t-interval over seeds; Welch's test over seeds with
Holm's correction from three seeds on; with fewer seeds and no features here, no test). The
report's figures stay those of the study that made them.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

from cyclelab.io import read_json, write_json
from cyclelab.report.aggregate import aggregate, compare_variants
from cyclelab.report.figures import plot_curve, plot_ssim
from cyclelab.report.study_page import page_tables
from cyclelab.report.tables import read_csv

FIGURES = ("ssim.png", "ssim_lines.png", "fid.png", "kid.png", "ssim_curve.png", "fid_curve.png",
           "losses.png")


def training_seconds(history: Path) -> tuple[int, float]:
    """Epochs and the sum of the epoch rows' ``seconds`` of one run's training curve."""
    with history.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return len(rows), round(sum(float(r.get("seconds") or 0.0) for r in rows), 1)


def main(study: Path, out: Path, quiet: bool = False) -> None:
    reports = study / "reports"
    metrics = {f.stem: read_json(f, f"dvc repro in {study}")
               for f in sorted((reports / "metrics").glob("*.json"))}
    if not metrics:
        sys.exit(f"{reports / 'metrics'}: no aggregated metrics; run dvc repro in {study} first")
    seeds = {name: data["seeds"] for name, data in metrics.items()}
    if len({tuple(s) for s in seeds.values()}) != 1:
        sys.exit(f"{reports / 'metrics'}: variants aggregate different seeds {seeds}; rerun "
                 "dvc repro there so that compare and report see the same study.seeds")
    runs = {}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for variant, data in metrics.items():
        for seed in data["seeds"]:
            run = f"{variant}/s{seed}"
            epochs, seconds = training_seconds(reports / "plots" / "train" / f"{run}.csv")
            meta = read_json(study / "data" / "models" / run / "meta.json", "dvc repro")
            runs[run] = {"epochs": epochs, "train_seconds": seconds,
                         "precision": meta["precision"], "device": meta["device"]}
            replicate = read_json(reports / "seeds" / f"{run}.json", "dvc repro")
            write_json(out / "seeds" / f"{run}.json", replicate)
            samples = sorted((reports / "samples" / run).glob("epoch_*.png"))
            if samples:
                shutil.copyfile(samples[-1], out / "figures" / f"samples_{variant}_s{seed}.png")
    if (reports / "figures").is_dir():
        for name in FIGURES:
            if (reports / "figures" / name).is_file():
                shutil.copyfile(reports / "figures" / name, out / "figures" / name)
    else:  # a partial study (no report stage yet): the SSIM and curve figures from its runs
        plot_ssim({v: [row for s in d["seeds"] for row in read_csv(
            reports / "eval" / v / f"s{s}.csv")] for v, d in metrics.items()},
            out / "figures" / "ssim.png", out / "figures" / "ssim_lines.png")
        histories = {run: read_csv(reports / "plots" / "train" / f"{run}.csv") for run in runs}
        plot_curve(histories, out / "figures" / "fid_curve.png")
        plot_curve(histories, out / "figures" / "ssim_curve.png", "ssim",
                   "SSIM of real vs translated (higher is better)")
    write_json(out / "metrics.json", metrics)
    if (reports / "comparisons.json").is_file():
        write_json(out / "comparisons.json", read_json(reports / "comparisons.json", "dvc repro"))
    write_json(out / "runs.json", runs)
    if not quiet:
        print(page_tables(out))


def merge(out: Path, alpha: float = 0.05, seed: int = 0) -> None:
    """OUT/metrics.json and OUT/comparisons.json from every replicate in OUT/seeds/."""
    metrics = {}
    for folder in sorted(p for p in (out / "seeds").iterdir() if p.is_dir()):
        per_seed = {int(f.stem[1:]): read_json(f, "collect_study.py")
                    for f in sorted(folder.glob("s*.json"))}
        metrics[folder.name] = aggregate(dict(sorted(per_seed.items())))
    write_json(out / "metrics.json", metrics)
    write_json(out / "comparisons.json", compare_variants(metrics, {}, {}, alpha, 0, seed))


def add(study: Path, out: Path) -> None:
    """Add ``study``'s finished replicates to ``out`` and recompute its tables (``--add``)."""
    runs = read_json(out / "runs.json", "collect_study.py") if (out / "runs.json").is_file() \
        else {}
    with tempfile.TemporaryDirectory() as tmp:
        main(study, Path(tmp), quiet=True)
        runs |= read_json(Path(tmp) / "runs.json", "collect_study.py")
        for replicate in (Path(tmp) / "seeds").rglob("s*.json"):
            target = out / replicate.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(replicate, target)
        for grid in (Path(tmp) / "figures").glob("samples_*.png"):
            shutil.copyfile(grid, out / "figures" / grid.name)
    write_json(out / "runs.json", dict(sorted(runs.items())))
    merge(out)
    print(page_tables(out))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--add":
        add(Path(args[1]), Path(args[2]))
    elif len(args) == 2:
        main(Path(args[0]), Path(args[1]))
    else:
        sys.exit("usage: python bench/collect_study.py [--add] STUDY_REPO OUT_DIR")
