"""End to end: the real `dvc repro` of the whole DAG on tiny params with two variants and two
replicate seeds and a finetune of one of them, in a copy of the repo; then a no-op rerun and a
`dvc exp run -S` variant experiment with its own metrics."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sqlite3
import statistics
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TINY, write_params
from tests.tinyrepo import clone_dir, make_repo, sh, tiny_params

# One xdist worker runs this module: its tests share one study (the module fixture).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]

SEEDS = [0, 1]
# MLflow runs per stage script: the finetune's seeds are "train" runs, its scores "evaluate" ones.
STAGE_RUNS = {"download": 1, "prepare": 1, "reference": 1, "classifier": 2, "pretrain_ae": 2,
              "train": 6, "evaluate": 6, "compare": 3, "report": 1}
# seeds/002's second phase: baseline's final weights, one more epoch without the identity loss.
FINETUNES = {"ft": {"init": "baseline", "train": {"epochs": 1, "lambda_identity": 0.0}}}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A git copy of the repository with tiny params (two variants, two seeds, a finetune, the
    FID curve every epoch), reproduced."""
    params = tiny_params(variants=TINY["variants"], finetunes=FINETUNES,
                         study={"seeds": SEEDS}, eval={"every_k_epochs": 1, "curve_images": 4})
    repo = make_repo(tmp_path_factory.mktemp("study") / "repo", params)
    sh(["dvc", "repro"], repo, timeout=1200)
    # Committed, as a user commits a study before an experiment: `dvc exp run` starts from the
    # commit and reruns only what its settings change.
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "dvc repro"], repo)
    return repo


def declared_outputs(repo: Path) -> list[Path]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return [repo / out["path"] for stage in lock["stages"].values()
            for out in stage.get("outs", [])]


def test_every_declared_output_exists(study):
    outs = declared_outputs(study)
    assert len(outs) >= 15
    missing = [str(p) for p in outs if not p.exists()]
    assert not missing
    # 12 training images per domain, 2 of them held out for validation (data.val_fraction 0.2).
    for split, n in (("trainA", 10), ("trainB", 10), ("valA", 2), ("valB", 2), ("testA", 6),
                     ("testB", 6)):
        assert len(list((study / "data/prepared" / split).glob("*.png"))) == n, split
    source = json.loads((study / "data/raw/SOURCE.json").read_text())
    assert source["dataset"] == "digits"
    assert (study / "reports/index.html").read_text().count("<img") >= 4


def test_aggregates_follow_the_per_seed_and_per_image_scores(study):
    """Every aggregate is what its inputs make it: the mean and the sample std of the per-seed
    scores, a t-interval around that mean, a per-seed SSIM that is the mean of the per-image
    CSV, label accuracy a whole number of correct images with the classifier's own ceiling, and
    the reference lines exactly as the reference stage wrote them."""
    from scipy import stats

    lines = json.loads((study / "data/reference/lines.json").read_text())
    t_975 = stats.t.ppf(0.975, len(SEEDS) - 1)
    for variant in ("baseline", "ae_init", "ft"):
        metrics = json.loads((study / f"reports/metrics/{variant}.json").read_text())
        assert metrics["seeds"] == SEEDS
        per_seed = {s: json.loads((study / f"reports/seeds/{variant}/s{s}.json").read_text())
                    for s in SEEDS}
        per_image = {s: list(csv.DictReader(
            (study / f"reports/eval/{variant}/s{s}.csv").read_text().splitlines()))
            for s in SEEDS}
        for direction, target in (("A_to_B", "B"), ("B_to_A", "A")):
            scores = metrics[direction]
            where = (variant, direction)
            for key in ("fid", "kid", "ssim", "psnr", "ssim_cycle", "label_accuracy"):
                values = [per_seed[s][direction][key] for s in SEEDS]
                assert scores[f"{key}_seeds"] == values, (*where, key)
                assert scores[key] == pytest.approx(statistics.fmean(values), rel=1e-12)
                assert scores[f"{key}_std"] == pytest.approx(statistics.stdev(values),
                                                             rel=1e-9, abs=1e-15)
            for key in ("fid", "kid"):
                lo, hi = scores[f"{key}_ci95"]
                half = t_975 * scores[f"{key}_std"] / math.sqrt(len(SEEDS))
                assert (lo, hi) == pytest.approx((scores[key] - half, scores[key] + half),
                                                 rel=1e-9, abs=1e-12), (*where, key)
                assert lo <= scores[key] <= hi
            for seed in SEEDS:
                rows = [r for r in per_image[seed] if r["direction"] == direction]
                assert len(rows) == per_seed[seed][direction]["n_images"]
                for key in ("ssim", "psnr", "ssim_cycle"):
                    assert per_seed[seed][direction][key] == pytest.approx(
                        statistics.fmean(float(r[key]) for r in rows), rel=1e-9), (*where, key)
                correct = per_seed[seed][direction]["label_accuracy"] * scores["label_n"]
                assert correct == pytest.approx(round(correct), abs=1e-6)
            assert scores["worse_than_identity"] is (scores["fid"] > scores["fid_identity"])
            assert {k: scores[k] for k in lines[direction]} == lines[direction]
            classifier = json.loads((study / f"data/classifier/{target}/meta.json").read_text())
            assert scores["label_accuracy_ceiling"] == classifier["test_accuracy"]
            # How the weights were trained, with every score (CPU and GPU runs differ).
            assert (scores["train_precision"], scores["train_device"]) == ("fp32", "cpu")
    comparisons = json.loads((study / "reports/comparisons.json").read_text())
    assert {(c["direction"], c["metric"]) for c in comparisons} == {
        (d, m) for d in ("A_to_B", "B_to_A") for m in ("fid", "kid")}
    assert len(comparisons) == 3 * 2 * 2  # three pairs of variants, two directions, FID and KID
    assert all(isinstance(c["significant"], bool) and c["sentence"] for c in comparisons)
    page = (study / "reports/index.html").read_text()
    assert "doing nothing" in page and "floor" in page and "Lowest FID" not in page
    # The FID curve during training (eval.every_k_epochs) in the epoch rows and the report.
    history = (study / "reports/plots/train/baseline/s0.csv").read_text().splitlines()
    assert "fid_A_to_B" in history[0] and "kid_B_to_A" in history[0]
    assert "ssim_A_to_B" in history[0] and "ssim_B_to_A" in history[0]  # seeds/000 Fig. 12
    assert "figures/fid_curve.png" in page and "figures/ssim_curve.png" in page


def test_collect_study_gathers_every_finished_run_for_its_page(study, tmp_path):
    # bench/collect_study.py: what docs/studies/<name>/ commits (numbers, runs, small figures).
    sys.path.insert(0, str(study / "bench"))
    try:
        import collect_study
    finally:
        sys.path.remove(str(study / "bench"))
    from cyclelab.report import study_page

    collect_study.main(study, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    runs = json.loads((tmp_path / "runs.json").read_text())
    names = {"baseline", "ae_init", *FINETUNES}
    assert set(metrics) == names
    assert metrics["baseline"]["seeds"] == SEEDS
    assert metrics["baseline"]["A_to_B"]["fid_seeds"] == [json.loads(
        (study / f"reports/seeds/baseline/s{s}.json").read_text())["A_to_B"]["fid"] for s in SEEDS]
    assert set(runs) == {f"{v}/s{s}" for v in names for s in SEEDS}
    for run, gathered in runs.items():  # epochs and seconds from the run's epoch rows
        rows = list(csv.DictReader((study / f"reports/plots/train/{run}.csv").open()))
        seconds = [float(row["seconds"]) for row in rows]
        assert rows and all(s > 0 for s in seconds), run  # (a tiny run's sum can round to 0.0)
        assert (gathered["epochs"], gathered["train_seconds"]) == (len(rows),
                                                                   round(sum(seconds), 1)), run
    assert json.loads((tmp_path / "seeds/ae_init/s1.json").read_text()) == json.loads(
        (study / "reports/seeds/ae_init/s1.json").read_text())
    assert json.loads((tmp_path / "comparisons.json").read_text()) == json.loads(
        (study / "reports/comparisons.json").read_text())
    assert (tmp_path / "figures/samples_baseline_s0.png").is_file()
    assert (tmp_path / "figures/ssim_curve.png").is_file()
    assert "| A→B | doing nothing |" in study_page.tables(metrics)


def test_one_mlflow_run_per_stage_execution(study):
    with sqlite3.connect(study / "mlflow.db") as db:
        rows = db.execute("SELECT t.value, r.status FROM runs r JOIN tags t ON "
                          "t.run_uuid = r.run_uuid AND t.key = 'stage'").fetchall()
        groups = db.execute("SELECT DISTINCT value FROM tags WHERE key = "
                            "'cyclelab.group'").fetchall()
    counts: dict[str, int] = {}
    for stage, status in rows:
        assert status == "FINISHED"
        counts[stage] = counts.get(stage, 0) + 1
    assert counts == STAGE_RUNS
    assert len(groups) == 1  # one `dvc repro`, one group
    assert list((study / "mlartifacts").rglob("*.png"))


def test_repro_again_is_a_no_op(study):
    out = sh(["dvc", "status"], study).stdout
    assert "up to date" in out.lower()


def test_temp_experiment_with_overrides_lands_in_exp_show_and_the_real_store(study):
    """`dvc exp run --temp` runs in a copy under .dvc/tmp/exps that is deleted afterwards: the
    experiment must still appear in `dvc exp show` with its metrics, and its MLflow runs and
    artifacts must land in the repo's own store. One experiment carries several settings of one
    variant (keys new to params.yaml, hence `+`): its epochs and two networks of the seeds,
    up to that variant's comparison (a target: the finetune that starts from it, which DVC
    would rerun too, is left out; test_a_finetune_starts_from_its_parent_and_dvc_sees_the_
    dependency checks that new parent weights make it stale, and test_config that it inherits
    the parent's networks). DVC reruns that variant's seeds, nothing else."""
    sh(["dvc", "exp", "run", "--temp", "-S", "+variants.baseline.train.epochs=2",
        "-S", "+variants.baseline.model.generator=attention",
        "-S", "+variants.baseline.model.discriminator=dual_head", "-n", "two-epochs",
        "compare@baseline"], study, timeout=1200)
    show = json.loads(sh(["dvc", "exp", "show", "--json"], study).stdout)
    fids = []
    for commit in show:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                metrics = rev["data"]["metrics"]["reports/metrics/baseline.json"]["data"]
                fids.append((rev.get("name"), metrics["A_to_B"]["fid"]))
    assert any(name == "two-epochs" and math.isfinite(fid) for name, fid in fids)
    with sqlite3.connect(study / "mlflow.db") as db:
        runs = db.execute(
            "SELECT r.artifact_uri, s.value, v.value FROM runs r JOIN tags t ON "
            "t.run_uuid = r.run_uuid AND t.key = 'dvc_exp_name' AND t.value = 'two-epochs' "
            "JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = 'stage' LEFT JOIN tags v ON "
            "v.run_uuid = r.run_uuid AND v.key = 'variant'").fetchall()
    trained = sorted(variant for _, stage, variant in runs if stage == "train")
    assert trained == ["baseline", "baseline"], trained  # two seeds
    assert all(uri.startswith((study / "mlartifacts").as_uri()) for uri, _, _ in runs)
    # Stages that log files (train: samples and models) have them in the real store.
    assert all(Path(uri.removeprefix("file://")).is_dir() for uri, stage, _ in runs
               if stage == "train")


def test_finished_checkpoint_is_resumed_and_outputs_rewritten(study):
    """A rerun whose params match the checkpoint (say, the autoencoders changed but this
    variant does not use them) trains nothing and still writes every output."""
    shutil.rmtree(study / "reports/samples/baseline/s1")
    shutil.rmtree(study / "data/models/baseline/s1")
    epochs = yaml.safe_load((study / "params.yaml").read_text())["train"]["epochs"]
    proc = sh([sys.executable, "pipeline/train.py", "--variant", "baseline", "--seed", "1"],
              study)
    assert f"resuming from data/checkpoints/baseline/s1.pt after epoch {epochs}" in proc.stdout
    assert [p.name for p in (study / "reports/samples/baseline/s1").iterdir()] == \
        [f"epoch_{epochs:03d}.png"]
    assert (study / "data/models/baseline/s1/G_ab.pt").exists()


def test_adding_a_seed_reruns_only_the_new_runs(study):
    params = study / "params.yaml"
    before = params.read_text()
    raw = yaml.safe_load(before)
    raw["study"]["seeds"] = [*SEEDS, 7]
    write_params(params, raw)
    try:
        stale = set(json.loads(sh(["dvc", "status", "--json"], study).stdout))
    finally:
        params.write_text(before)
    assert {"train@baseline-7", "train@ae_init-7", "evaluate@baseline-7",
            "evaluate@ae_init-7", "finetune@ft", "evaluate_finetune@ft-7"} <= stale
    assert "evaluate_finetune@ft-0" not in stale
    assert not any(name.startswith(("train@", "evaluate@")) and not name.endswith("-7")
                   for name in stale), stale


def test_a_finetune_starts_from_its_parent_and_dvc_sees_the_dependency(study):
    lock = yaml.safe_load((study / "dvc.lock").read_text())["stages"]
    assert "data/models/baseline" in {d["path"] for d in lock["finetune@ft"]["deps"]}
    for seed in SEEDS:
        meta = json.loads((study / f"data/models/ft/s{seed}/meta.json").read_text())
        assert meta["init"] == "baseline"
        history = (study / f"reports/plots/train/ft/s{seed}.csv").read_text().splitlines()
        assert len(history) == 2  # a header and its one epoch
    assert "fine-tuned from baseline" in (study / "reports/index.html").read_text()
    assert "training precision: fp32 on cpu" in (study / "reports/summary.md").read_text()
    # New weights of the parent make the finetune (and only what follows it) stale.
    weights = study / "data/models/baseline/s0/G_ab.pt"
    before = weights.read_bytes()
    try:
        weights.write_bytes(before + b"\0")
        stale = set(json.loads(sh(["dvc", "status", "--json"], study).stdout))
    finally:
        weights.write_bytes(before)
    assert {"finetune@ft", "evaluate@baseline-0"} <= stale
    assert not any(name.startswith(("train@ae_init", "train@baseline-1", "evaluate@ae_init",
                                    "evaluate_finetune@")) for name in stale), stale
    # Other params of the finetune: its own stages and the report, no other variant's.
    params = study / "params.yaml"
    before = params.read_text()
    raw = yaml.safe_load(before)
    raw["finetunes"]["ft"]["train"]["lambda_cycle"] = 5.0
    write_params(params, raw)
    try:
        stale = set(json.loads(sh(["dvc", "status", "--json"], study).stdout))
    finally:
        params.write_text(before)
    assert {"finetune@ft", "compare_finetune@ft", "report"} <= stale
    assert not any(name.startswith(("train@", "evaluate@", "compare@")) for name in stale), stale


def _stale_after(study: Path, edit) -> set[str]:
    """The stages `dvc status` calls stale after ``edit(raw params)``; params restored after."""
    params = study / "params.yaml"
    before = params.read_text()
    raw = yaml.safe_load(before)
    edit(raw)
    write_params(params, raw)
    try:
        return set(json.loads(sh(["dvc", "status", "--json"], study).stdout))
    finally:
        params.write_text(before)


def test_each_stage_reruns_only_for_what_can_change_it(study, tmp_path):
    """Issue 15: an edit of one variant does not make the finetunes of another stale, the
    download declares its zip-bomb limit, and new autoencoders reach only the variants that
    start from them (through init@<variant>, which a random-init variant writes identically)."""
    def edit_variant(raw):
        raw["variants"]["ae_init"]["train"] = {"lambda_cycle": 5.0}

    stale = _stale_after(study, edit_variant)
    assert {"train@ae_init-0", "train@ae_init-1", "compare@ae_init", "report"} <= stale
    assert not any(n.startswith(("finetune@", "train@baseline", "init@")) for n in stale), stale

    stale = _stale_after(study, lambda raw: raw["data"].update(max_compression_ratio=50.0))
    assert "download" in stale

    # New autoencoders, in a copy of the study (the shared one keeps its own).
    copy = clone_dir(study, tmp_path / "ae-edit")
    raw = yaml.safe_load((copy / "params.yaml").read_text())
    raw["ae"]["lr"] = raw["ae"]["lr"] / 2
    write_params(copy / "params.yaml", raw)
    assert {"pretrain_ae@A", "pretrain_ae@B"} <= set(
        json.loads(sh(["dvc", "status", "--json"], copy).stdout))
    # What retraining them would do to their outputs, without the two trainings: new weights.
    for domain in "AB":
        weights = copy / "data" / "ae" / domain / "generator.pt"
        state = torch.load(weights)
        first = next(key for key, value in state.items() if value.is_floating_point())
        state[first] = state[first] + 1e-3
        weights.unlink()  # a new file: never write through a link into DVC's cache
        torch.save(state, weights)
    sh(["dvc", "repro", "-s", "init@baseline", "init@ae_init"], copy, timeout=600)
    stale = set(json.loads(sh(["dvc", "status", "--json"], copy).stdout))
    assert {"train@ae_init-0", "train@ae_init-1"} <= stale
    assert not any(n.startswith(("train@baseline", "finetune@")) for n in stale), stale
