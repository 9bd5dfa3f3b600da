"""The report: a table a person reads, with CIs, the identity and floor lines, verdicts that
only claim what the tests support, figures and samples, from what the stages wrote."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cyclelab.errors import DataError
from cyclelab.io import write_csv, write_json
from cyclelab.report.build import build_report, verdict_lines
from cyclelab.report.figures import image_means
from cyclelab.report.tables import metrics_table

LINES = {"fid_identity": 200.0, "fid_identity_ci95": [190.0, 210.0], "fid_floor": 50.0,
         "fid_floor_ci95": [45.0, 55.0], "kid_identity": 0.1, "kid_floor": 0.0}


def metrics(fid_ab: float, fid_ba: float, seeds: int = 1) -> dict:
    def direction(fid: float, ssim: float) -> dict:
        return {"fid": fid, "fid_ci95": [fid - 10, fid + 10], "fid_seeds": [fid] * seeds,
                "fid_std": 0.0, "kid": 0.1, "ssim": ssim, "ssim_seeds": [ssim] * seeds,
                "ssim_std": 0.01, "ssim_cycle": 0.9, "psnr_cycle": 20.0, **LINES,
                "worse_than_identity": fid > LINES["fid_identity"]}
    return {"seeds": list(range(seeds)), "n_seeds": seeds,
            "A_to_B": direction(fid_ab, 0.5), "B_to_A": direction(fid_ba, 0.4)}


def test_report_from_stage_outputs(tmp_path):
    reports = tmp_path / "reports"
    for variant, (ab, ba) in {"baseline": (300.0, 150.0), "ae_init": (180.0, 160.0)}.items():
        write_json(reports / "metrics" / f"{variant}.json", metrics(ab, ba))
        write_csv(reports / "plots" / "train" / variant / "s0.csv",
                  [{"epoch": e, "loss_G": 10.0 / e, "loss_D": 0.5, "loss_cycle_a": 0.3,
                    "loss_cycle_b": 0.4, "acc_D_a_real": 0.9, "acc_D_a_fake": 0.2,
                    "acc_D_b_real": 0.7, "acc_D_b_fake": 0.4} for e in (1, 2, 3)])
        write_csv(reports / "eval" / variant / "s0.csv",
                  [{"direction": d, "file": f"{i}.png", "ssim": 0.1 * i}
                   for d in ("A_to_B", "B_to_A") for i in range(4)])
        (reports / "samples" / variant / "s0").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            reports / "samples" / variant / "s0" / "epoch_003.png")
    comparison = {"sentence": "FID A→B: no significant difference between baseline and "
                              "ae_init (test sentence)."}
    build_report({"baseline": "standard init", "ae_init": "AE init"}, reports,
                 reports / "figures", {"dataset": "digits"}, seeds=[0],
                 comparisons=[comparison])
    page = (reports / "index.html").read_text()
    # Mean with its CI, and the flag where a translation is worse than doing nothing.
    assert "<td>⚠ 300.0 [290.0, 310.0]</td>" in page
    assert "<td>180.0 [170.0, 190.0]</td>" in page
    assert "<td>200.0 [190.0, 210.0]</td>" in page  # the identity line
    assert "<td>50.0 [45.0, 55.0]</td>" in page  # the floor line
    assert "baseline A→B: FID 300.0 is worse than doing nothing" in page
    assert "(test sentence)" in page and "Lowest FID" not in page
    assert "<tr><th>dataset</th><td>digits</td></tr>" in page
    for name in ("fid.png", "kid.png", "losses.png", "d_accuracy.png", "ssim.png",
                 "ssim_lines.png", "samples_baseline_s0.png"):
        assert (reports / "figures" / name).stat().st_size > 0
        assert f"figures/{name}" in page
    summary = (reports / "summary.md").read_text()
    assert "| baseline | 1 | ⚠ 300.0 [290.0, 310.0] |" in summary


def test_no_discriminator_accuracy_figure_for_histories_without_its_columns(tmp_path):
    from cyclelab.report.figures import plot_d_accuracy

    rows = {"baseline": [{"epoch": 1, "loss_G": 1.0, "acc_D_real": 0.5, "acc_D_fake": 0.5}]}
    assert plot_d_accuracy(rows, tmp_path / "d.png") is None and not (tmp_path / "d.png").exists()


def test_missing_values_show_a_dash_and_std_over_seeds():
    # v has only A→B FID, w only A→B KID: each misses the other's cell; B→A nobody has.
    header, rows = metrics_table({"v": {"A_to_B": {"fid": 1.0}}, "w": {"A_to_B": {"kid": 0.25}}})
    assert header == ["variant", "seeds", "A→B FID ↓", "A→B KID ↓"]
    assert rows == [["v", "1", "1.0", "–"], ["w", "1", "–", "0.2500"]]
    header, rows = metrics_table({"v": metrics(100.0, 100.0, seeds=3)})
    ssim = header.index("A→B SSIM ↑")
    assert rows[0][ssim] == "0.500 ± 0.010"
    assert [r[0] for r in rows][1:] == ["doing nothing (untranslated source vs target)",
                                       "floor (real target test vs real target train, same N)"]


def test_verdicts_flag_what_is_worse_than_doing_nothing_and_claim_nothing_else():
    # Identity line FID 200: A→B at 300 is flagged, B→A at 150 is not; no test, no claim.
    assert verdict_lines({"v": metrics(300.0, 150.0)}, []) == [
        "⚠ v A→B: FID 300.0 is worse than doing nothing (200.0 for the untranslated images)."]
    assert verdict_lines({"v": metrics(100.0, 120.0)}, []) == []
    comparison = {"sentence": "FID A→B: no significant difference (test sentence)."}
    assert verdict_lines({"v": metrics(100.0, 120.0)}, [comparison]) == [comparison["sentence"]]


def _one_variant(reports, variant="baseline"):
    write_json(reports / "metrics" / f"{variant}.json", metrics(100.0, 120.0))
    write_csv(reports / "eval" / variant / "s0.csv",
              [{"direction": "A_to_B", "file": "0.png", "ssim": 0.5}])


def test_a_declared_variant_without_metrics_is_an_error_naming_file_and_stage(tmp_path):
    reports = tmp_path / "reports"
    _one_variant(reports)
    with pytest.raises(DataError, match=r"metrics/ae_init\.json: not found; run `dvc repro "
                                         r"compare@ae_init`"):
        build_report({"baseline": "standard init", "ae_init": "AE init"}, reports,
                     reports / "figures")
    with pytest.raises(DataError, match=r"tuned\.json: not found; run `dvc repro "
                                         r"compare_finetune@tuned`"):
        build_report({"baseline": "standard init", "tuned": "fine-tuned"}, reports,
                     reports / "figures", finetunes={"tuned"})


def test_missing_csvs_are_left_out_lines_in_the_report(tmp_path):
    reports = tmp_path / "reports"
    _one_variant(reports)
    build_report({"baseline": "standard init"}, reports, reports / "figures", seeds=[0, 1])
    summary = (reports / "summary.md").read_text()
    page = (reports / "index.html").read_text()
    left_out = summary.split("## Left out")[1].split("## Study")[0]
    for line in (f"{reports}/plots/train/baseline/s0.csv: missing, so baseline/s0 of the loss "
                 "and FID curves is left out (`dvc repro train@baseline-0` writes it).",
                 f"{reports}/eval/baseline/s1.csv: missing, so baseline seed 1 of the SSIM "
                 "figures is left out (`dvc repro evaluate@baseline-1` writes it)."):
        assert f"- {line}" in left_out and line in page
    assert "eval/baseline/s0.csv" not in left_out and "<h2>Left out</h2>" in page


def test_every_seed_with_scores_needs_its_features(tmp_path):
    from cyclelab.report.aggregate import load_features

    files = {"baseline": {s: tmp_path / f"s{s}" / "features.npz" for s in (0, 1)}}
    (tmp_path / "s0").mkdir()
    np.savez(files["baseline"][0], A_to_B=np.ones((3, 2)), B_to_A=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"s1/features\.npz: not found; run `dvc repro "
                                         r"evaluate@baseline-1`"):
        load_features(files)
    (tmp_path / "s1").mkdir()
    np.savez(files["baseline"][1], A_to_B=np.ones((3, 2)), B_to_A=np.zeros((3, 2)))
    features = load_features(files)["baseline"]
    assert [f.shape for f in features["A_to_B"]] == [(3, 2), (3, 2)]


def test_the_study_table_says_how_many_images_each_split_has_and_how_many_were_dropped():
    from cyclelab import config
    from cyclelab.report.study import study_facts

    cfg = config.from_dict({})
    reference = {"domains": {"A": {"n": 100}, "B": {"n": 90}}, "weights_sha256": "abc"}
    prepared = {"outputs": {"trainA": 357, "valA": 40, "testA": 100, "trainB": 360,
                            "valB": 40, "testB": 90},
                "duplicates": {"dropped_from_train": 3}}
    facts = study_facts(cfg, reference, {}, prepared)
    assert facts["images (train / validation / test), A; B"] == "357 / 40 / 100; 360 / 40 / 90"
    assert facts["training copies of validation or test images dropped"] == \
        "3 (data.drop_duplicates: true)"


def test_ssim_lines_keep_test_image_order_and_average_seeds():
    # seeds/000's line plots (Figs 3, 5) follow the test images, not the sorted values.
    rows = [{"file": "b.png", "ssim": 0.2}, {"file": "a.png", "ssim": 0.9},
            {"file": "b.png", "ssim": 0.4}, {"file": "a.png", "ssim": 0.7}]
    assert image_means(rows, "ssim") == pytest.approx([0.3, 0.8])
