"""MLflow tracking: the store follows DVC_ROOT (queued experiments run in a temporary copy),
one run per stage with its tags, and a fresh store survives parallel first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyclelab import tracking


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "repo"
    (root / ".dvc").mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.setenv("CYCLELAB_GROUP", "group-1")
    monkeypatch.chdir(tmp_path)  # like a queued run: the working copy is elsewhere
    return root


def test_store_and_artifacts_follow_dvc_root(store):
    with tracking.stage_run("train", {"train.lr": 0.1}, variant="baseline") as run:
        run.log_metrics({"loss": 1.5, "bad": float("nan")}, step=1)
        run.log_text("hello", "notes/hello.txt")
    assert (store / "mlflow.db").exists()
    runs = tracking.runs("train")
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["tags.variant"] == "baseline"
    assert row["tags.cyclelab.group"] == "group-1"
    assert row["params.train.lr"] == "0.1"
    assert row["metrics.loss"] == 1.5
    assert "metrics.bad" not in runs.columns or runs["metrics.bad"].isna().all()
    assert row["artifact_uri"].startswith((store / "mlartifacts").as_uri())
    assert (store / "mlartifacts").is_dir()


def test_failed_stage_marks_run_failed(store):
    with pytest.raises(RuntimeError), tracking.stage_run("evaluate", {}, variant="x"):
        raise RuntimeError("boom")
    assert tracking.runs("evaluate").iloc[0]["status"] == "FAILED"


def test_env_uri_overrides(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.tracking_uri() == uri


def test_parallel_first_use_of_a_fresh_store(store):
    code = ("from cyclelab import tracking\n"
            "with tracking.stage_run('train', {}, variant='v') as r: r.log_metrics({'x': 1})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert len(tracking.runs("train")) == 3


def test_group_id_is_stable_within_a_process(monkeypatch):
    monkeypatch.delenv("CYCLELAB_GROUP", raising=False)
    assert tracking.group_id() == tracking.group_id()
