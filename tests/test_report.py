"""The report: a table a person reads, with figures and samples, from what the stages wrote."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from cyclelab.io import write_csv, write_json
from cyclelab.report.build import best_lines, build_report, metrics_table


def metrics(fid_ab: float, fid_ba: float) -> dict:
    return {"A_to_B": {"fid": fid_ab, "kid": 0.1, "ssim": 0.5, "ssim_cycle": 0.9,
                       "psnr_cycle": 20.0},
            "B_to_A": {"fid": fid_ba, "kid": 0.2, "ssim": 0.4, "ssim_cycle": 0.8,
                       "psnr_cycle": 18.0}}


def test_report_from_stage_outputs(tmp_path):
    reports = tmp_path / "reports"
    for variant, (ab, ba) in {"baseline": (300.0, 250.0), "ae_init": (280.0, 260.0)}.items():
        write_json(reports / "metrics" / f"{variant}.json", metrics(ab, ba))
        write_csv(reports / "plots" / f"train_{variant}.csv",
                  [{"epoch": e, "loss_G": 10.0 / e, "loss_D": 0.5, "loss_cycle_a": 0.3,
                    "loss_cycle_b": 0.4} for e in (1, 2, 3)])
        write_csv(reports / "eval" / f"{variant}.csv",
                  [{"direction": d, "file": f"{i}.png", "ssim": 0.1 * i}
                   for d in ("A_to_B", "B_to_A") for i in range(4)])
        (reports / "samples" / variant).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            reports / "samples" / variant / "epoch_003.png")
    build_report({"baseline": "standard init", "ae_init": "AE init"}, reports,
                 reports / "figures", {"dataset": "digits"})
    page = (reports / "index.html").read_text()
    assert "Lowest FID A→B: ae_init (280.00). Lowest FID B→A: baseline (250.00)." in page
    assert "<td>baseline</td><td>300.00</td><td>250.00</td>" in page
    assert "<tr><th>dataset</th><td>digits</td></tr>" in page
    for name in ("fid.png", "losses.png", "ssim.png", "samples_baseline.png"):
        assert (reports / "figures" / name).stat().st_size > 0
        assert f"figures/{name}" in page
    summary = (reports / "summary.md").read_text()
    assert "| baseline | 300.00 | 250.00 |" in summary


def test_missing_values_show_a_dash_and_single_variant_has_no_winner():
    header, rows = metrics_table({"v": {"A_to_B": {"fid": 1.0}}})
    assert rows[0][1] == "1.00" and rows[0][2] == "–"
    assert best_lines({"v": metrics(1.0, 2.0)}) == []
    assert json.dumps(header)  # plain strings
