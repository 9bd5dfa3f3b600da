"""The validation split (data.val_fraction): prepare carves valA/valB from the training images,
seeded and deterministic, disjoint from train and test, listed in the manifest and labels; every
choice made during training reads it, so the train stage runs staged, with the eval curve and
the sample grids, while the test folders are somewhere else."""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cyclelab.config import DataConfig
from cyclelab.data import prepare
from cyclelab.data.digits import generate_digits
from cyclelab.errors import DataError
from cyclelab.paths import MANIFEST_FILE, SUMMARY_FILE
from cyclelab.stage import run_stage
from tests.conftest import TINY, write_params


def digits_raw(root: Path, train: int = 20, test: int = 4) -> Path:
    generate_digits(root, seed=0, image_size=32, train_per_domain=train, test_per_domain=test)
    return root


def data_cfg(**overrides) -> DataConfig:
    return DataConfig(**{"image_size": 32, "workers": 1, **overrides})


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def png_digests(folder: Path) -> dict[str, str]:
    """Name -> sha256 of the decoded pixels of every PNG in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as img:
            out[path.name] = hashlib.sha256(np.asarray(img).tobytes()).hexdigest()
    return out


def test_prepare_carves_a_seeded_validation_split(tmp_path):
    raw = digits_raw(tmp_path / "raw")
    out = tmp_path / "out"
    summary = prepare.prepare_dataset(raw, out, data_cfg(), progress=False)
    assert DataConfig().val_fraction == 0.1
    assert summary["outputs"] == {"trainA": 18, "trainB": 18, "valA": 2, "valB": 2, "testA": 4,
                                  "testB": 4}
    digests = {split: png_digests(out / split) for split in prepare.PREPARED_SPLITS}
    for domain in "AB":
        val, train, test = (digests[f"{s}{domain}"] for s in ("val", "train", "test"))
        assert len(val) == 2 and not set(val) & set(train)  # moved, not copied
        assert not set(val.values()) & (set(train.values()) | set(test.values()))
    rows = manifest(out)
    val_rows = [r for r in rows if r["split"] == "val"]
    assert sorted(r["output"] for r in val_rows) == sorted(
        f"val{d}/{name}" for d in "AB" for name in digests[f"val{d}"])
    for row in val_rows:
        assert row["status"] == "ok" and row["source"] == f"train{row['domain']}/" + \
            row["output"].split("/")[1]
    # labels.csv covers every prepared image, the validation ones included.
    with open(out / "labels.csv", newline="", encoding="utf-8") as handle:
        labelled = {(r["split"], r["file"]) for r in csv.DictReader(handle)}
    for split in prepare.PREPARED_SPLITS:
        for name in digests[split]:
            assert (split[:-1], f"{split}/{name}") in labelled
    assert json.loads((out / SUMMARY_FILE).read_text())["outputs"] == summary["outputs"]

    # The same names give the same split, however the files were written; 0 holds none out.
    shuffled = tmp_path / "shuffled"
    for split in prepare.SPLITS:
        (shuffled / split).mkdir(parents=True)
        for path in sorted((raw / split).iterdir(), reverse=True):
            shutil.copy(path, shuffled / split / path.name)
    shutil.copy(raw / "labels.csv", shuffled / "labels.csv")
    prepare.prepare_dataset(shuffled, tmp_path / "again", data_cfg(), progress=False)
    assert {d: png_digests(tmp_path / "again" / f"val{d}") for d in "AB"} == {
        d: digests[f"val{d}"] for d in "AB"}
    none = prepare.prepare_dataset(raw, tmp_path / "none", data_cfg(val_fraction=0.0),
                                   progress=False)
    assert (none["outputs"]["valA"], none["outputs"]["trainA"]) == (0, 20)
    half = prepare.prepare_dataset(raw, tmp_path / "half", data_cfg(val_fraction=0.5),
                                   progress=False)
    assert (half["outputs"]["valA"], half["outputs"]["trainB"]) == (10, 10)


def noise_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_training_repeats_of_validation_images_are_dropped(tmp_path):
    """Ten trainA images, each repeated under a later name: the repeat of an image held out
    for validation is dropped from training, the repeat of one kept in training stays."""
    raw = tmp_path / "raw"
    files = {f"trainA/img{i}.png": noise_png(i) for i in range(10)}
    files |= {f"trainA/zz_copy{i}.png": noise_png(i) for i in range(10)}
    files |= {"trainB/b.png": noise_png(50), "trainB/c.png": noise_png(51),
              "testA/t.png": noise_png(60), "testB/t.png": noise_png(61)}
    for relative, data in files.items():
        (raw / relative).parent.mkdir(parents=True, exist_ok=True)
        (raw / relative).write_bytes(data)
    out = tmp_path / "out"
    summary = prepare.prepare_dataset(raw, out, data_cfg(image_size=16, val_fraction=0.2),
                                      progress=False)
    rows = {r["source"]: r for r in manifest(out)}
    held_out = sorted(r["source"] for r in rows.values()
                      if (r["split"], r["domain"]) == ("val", "A"))
    assert len(held_out) == 2 and all("/img" in s for s in held_out)  # never a repeat
    for i in range(10):
        copy = rows[f"trainA/zz_copy{i}.png"]
        assert (copy["status"], copy["duplicate_of"]) == ("duplicate", f"trainA/img{i}.png")
        if f"trainA/img{i}.png" in held_out:
            assert copy["output"] == "" and "valA" in copy["detail"]
        else:
            assert copy["output"] == f"trainA/zz_copy{i}.png"
    assert summary["duplicates"]["dropped_from_train"] == 2
    assert summary["outputs"]["trainA"] == 20 - 2 - 2


def test_the_copy_kept_is_test_then_val_then_the_first_training_one():
    def row(split: str, source: str, key: str) -> dict:
        return {"split": split, "domain": "A", "source": source, "status": "ok", "sha256": key,
                "pixel_hash": key, "reason": "", "duplicate_of": "", "kept_in": ""}

    rows = [row("train", "trainA/1.png", "x"), row("train", "trainA/2.png", "y"),
            row("val", "trainA/3.png", "x"), row("train", "trainA/4.png", "y"),
            row("test", "testA/5.png", "x")]
    marked = prepare.mark_duplicates(rows)
    assert [r["status"] for r in marked] == ["duplicate", "ok", "duplicate", "duplicate", "ok"]
    assert [r["duplicate_of"] for r in marked] == ["testA/5.png", "", "testA/5.png",
                                                   "trainA/2.png", ""]
    assert [prepare.leaks(r) for r in marked] == [True, False, False, False, False]


def test_too_few_training_images_for_a_validation_split(tmp_path):
    raw = digits_raw(tmp_path / "raw", train=1, test=1)
    with pytest.raises(DataError, match=r"trainA: 1 usable image.*data.val_fraction"):
        prepare.prepare_dataset(raw, tmp_path / "out", data_cfg(), progress=False)


def stage_main(name: str):
    module = importlib.import_module(f"pipeline.{name}")
    return lambda *argv: run_stage(name, module.main, module.__doc__,
                                   getattr(module, "add_arguments", None), argv=list(argv))


@pytest.fixture
def study(tmp_path, monkeypatch) -> Path:
    """A folder with digits as the download stage delivers them and tiny staged params with
    the eval curve; the stages run in this process (no second torch import)."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "CYCLELAB_GROUP"):
        monkeypatch.delenv(name, raising=False)
    digits_raw(tmp_path / "data" / "raw", train=12, test=4)
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["data"] |= {"val_fraction": 0.25, "workers": 1}
    # One stage of one epoch: each curve point costs two FIDs (~13 s each on two cores).
    raw["train"] |= {"stage_batch_sizes": [2], "stage_epochs": [1],
                     "stage_eval_every": [1], "stage_eval_images": 3,
                     "stage_select": "kid"}  # no 2048-d matrix square root (~13 s each)
    raw["eval"] |= {"every_k_epochs": 1, "curve_images": 3}
    raw["variants"] = {"baseline": {"init": "random"}}
    write_params(tmp_path / "params.yaml", raw)
    return tmp_path


@pytest.mark.slow
def test_train_staged_reads_the_validation_split_never_the_test_split(study):
    assert stage_main("prepare")() == 0
    prepared = study / "data" / "prepared"
    assert [len(list((prepared / f"val{d}").glob("*.png"))) for d in "AB"] == [3, 3]
    for domain in "AB":  # only evaluate and reference may read these
        shutil.move(prepared / f"test{domain}", study / f"test{domain}-elsewhere")

    assert stage_main("train")("--variant", "baseline") == 0
    meta = json.loads((study / "data/models/baseline/s0/meta.json").read_text())
    assert [len(stage["candidates"]) for stage in meta["stages"]] == [1]
    with open(study / "reports/plots/train/baseline/s0.csv", newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert len(epochs) == 1
    assert all(float(row["fid_A_to_B"]) > 0 and float(row["candidate_score"]) > 0
               for row in epochs)
    assert [p.name for p in (study / "reports/samples/baseline/s0").glob("*.png")] == [
        "epoch_001.png"]


def test_without_a_validation_split_choices_stop_and_grids_show_training_images(study,
                                                                                capsys):
    params = yaml.safe_load((study / "params.yaml").read_text())
    params["data"]["val_fraction"] = 0.0
    write_params(study / "params.yaml", params)
    assert stage_main("prepare")() == 0
    assert stage_main("train")("--variant", "baseline") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "data.val_fraction" in error[0] and "valA" in error[0]

    params["train"] |= {"stage_batch_sizes": [], "stage_epochs": [], "stage_eval_every": []}
    params["eval"]["every_k_epochs"] = 0
    write_params(study / "params.yaml", params)
    assert stage_main("train")("--variant", "baseline") == 0
    assert "the sample grids show training images" in capsys.readouterr().out
