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
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from cyclelab.io import read_json, write_json
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


def main(study: Path, out: Path) -> None:
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
    print(page_tables(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/collect_study.py STUDY_REPO OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
