"""The real download and prepare stage scripts, chained, on the real apple2orange archive served
from 127.0.0.1 through CYCLELAB_MIRROR (the check of the datasets issue)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from httpserver import LocalServer
from PIL import Image

from tests.conftest import REPO, SHARED, TINY, write_params

APPLE2ORANGE = SHARED / "datasets" / "apple2orange.zip"
DELIVERED = {"trainA": 995, "trainB": 1019, "testA": 266, "testB": 248}


def stage(name: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pipeline" / f"{name}.py")], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not APPLE2ORANGE.is_file(),
                    reason=f"{APPLE2ORANGE} is not here (only CI and sessions have ../shared)")
def test_apple2orange_download_then_prepare(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["data"] = {"dataset": "apple2orange", "image_size": 48, "resize": "center_crop"}
    write_params(tmp_path / "params.yaml", raw)
    (tmp_path / ".dvc").mkdir()  # the repo root for the MLflow store and download cache
    with LocalServer({"/apple2orange.zip": APPLE2ORANGE}) as server:
        env = {**os.environ, "CYCLELAB_MIRROR": server.url}
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("DVC_ROOT", None)
        download = stage("download", tmp_path, env)
    assert download.returncode == 0, download.stderr
    source = json.loads((tmp_path / "data/raw/SOURCE.json").read_text())
    assert source["sha256"] == "834e1ad6ab54c94bddd013fac29b3fc809a08efe66734595b91a7668700ba16f"
    assert source["url"] == f"{server.url}/apple2orange.zip"

    prepare = stage("prepare", tmp_path, env)
    assert prepare.returncode == 0, prepare.stderr
    summary = json.loads((tmp_path / "data/prepared/summary.json").read_text())
    # 10 % of the training images held out for validation (data.val_fraction), and the 8
    # training copies of test images dropped (data.drop_duplicates).
    held_out = {"valA": 99, "valB": 101}
    assert {k: summary["outputs"][k] for k in held_out} == held_out
    assert summary["duplicates"]["dropped_from_train"] == 8
    assert sum(summary["outputs"].values()) == sum(DELIVERED.values()) - 8
    for split, n in {**DELIVERED, **held_out}.items():
        files = sorted((tmp_path / "data/prepared" / split).glob("*.png"))
        assert len(files) == summary["outputs"][split], split
        if split.startswith("test"):
            assert len(files) == n, split  # the test split is never changed
        for path in files[:: max(1, n // 5)]:
            with Image.open(path) as img:
                assert (img.size, img.mode) == ((48, 48), "RGB")
    with open(tmp_path / "data/prepared/manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(DELIVERED.values())
    assert {r["status"] for r in rows} == {"ok", "duplicate"}
    # The official archive repeats 14 files byte for byte: all reported, 8 dropped.
    assert sum(r["status"] == "duplicate" for r in rows) == 14
    assert (tmp_path / "mlflow.db").exists()
