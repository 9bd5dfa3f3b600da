"""Every generator and discriminator trains for a few iterations through the real train stage
(pipeline/train.py, run in-process as DVC runs it) on tiny params; the VAE runs through
pipeline/pretrain_ae.py and its KL is logged per epoch. The MLflow model export (about 2.5 s
per generator, the same code for every network) is recorded instead of run here; the
end-to-end test runs it."""

from __future__ import annotations

import copy
import csv
import json
import runpy
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY, write_params

NETS = {"model": {"n_blocks": 1, "ngf": 4, "ndf": 4}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A stage working directory: the embedded digits as prepared data, its own MLflow store."""
    from cyclelab.data.digits import generate_digits

    root = tmp_path_factory.mktemp("nets")
    (root / ".dvc").mkdir()  # the repo root the MLflow store is resolved from
    generate_digits(root / "data" / "prepared", seed=0, image_size=32, train_per_domain=8,
                    test_per_domain=2)
    from cyclelab import tracking

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracking.StageRun, "log_model",
                   lambda self, module, name, size: self.set_tags({f"model_{name}": "skipped"}))
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("DVC_ROOT", raising=False)
        yield root


def run(script: str, workdir: Path, overrides: dict, *args: str) -> None:
    """``python pipeline/<script>.py --params params.yaml <args>``, in this process."""
    raw = copy.deepcopy(TINY)
    for section, values in {**NETS, **overrides}.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    raw["train"]["num_samples"] = 1
    params = write_params(workdir / "params.yaml", raw)
    argv = sys.argv
    sys.argv = [script, "--params", str(params), *args]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(REPO / "pipeline" / f"{script}.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 0


def mlflow_params(workdir: Path, key: str) -> list[str]:
    """The values of MLflow param ``key``, oldest run first."""
    with sqlite3.connect(workdir / "mlflow.db") as db:
        return [v for (v,) in db.execute(
            "select p.value from params p join runs r on p.run_uuid = r.run_uuid "
            "where p.key = ? order by r.start_time", (key,))]


@pytest.mark.parametrize(("generator", "discriminator", "n_layers_d"), [
    ("resnet", "patch", 3), ("unet", "pixel", 3), ("pixelshuffle", "random_crop", 3),
    ("attention", "seed001", 3), ("resnet", "dual_head", 2)])
def test_train_stage_runs_every_network(workdir, capsys, generator, discriminator, n_layers_d):
    model = {"generator": generator, "discriminator": discriminator, "n_layers_d": n_layers_d}
    run("train", workdir, {"model": {**NETS["model"], **model}}, "--variant", "baseline")
    out = capsys.readouterr().out
    assert f"generator {generator} " in out and f"discriminator {discriminator} " in out
    assert mlflow_params(workdir, "n_params_G")[-1].isdigit()
    assert int(mlflow_params(workdir, "n_params_D")[-1]) > 0
    assert any((workdir / "data" / "models" / "baseline").rglob("G_ab.pt"))
    # The 70x70 PatchGAN, seed001 and dual_head see all of a 32-px image; pixel and
    # random_crop (8 px) do not.
    global_d = {"patch": "70 px", "seed001": "112 px", "dual_head": "38 px"}
    if discriminator in global_d:
        assert f"receptive field {global_d[discriminator]} >= image 32 px" in out
    else:
        assert ">= image" not in out
    if discriminator == "patch":
        assert "n_layers_d=1 (16 px) keeps the PatchGAN paper's ratio" in out


def test_vae_pretraining_logs_a_kl_that_does_not_vanish_then_transfers(workdir, capsys):
    ae = {"kind": "vae", "epochs": 2, "batch_size": 4, "kl_anneal_epochs": 1,
          "init_from": "source"}
    for domain in ("A", "B"):
        run("pretrain_ae", workdir, {"ae": ae}, "--domain", domain)
    with open(workdir / "reports" / "plots" / "ae_A.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["kl"]) > 0.1 for r in rows)  # nats per image
    with sqlite3.connect(workdir / "mlflow.db") as db:
        kl = [v for (v,) in db.execute("select value from metrics where key = 'epoch_kl'")]
    assert len(kl) == 4 and min(kl) > 0.1
    # ae.init_from: source -> G_ab starts from domain A's generator; every tensor loads.
    run("init", workdir, {"ae": ae}, "--variant", "ae_init")
    init = json.loads((workdir / "data/init/ae_init/init.json").read_text())
    assert init["G_ab"]["from"] == "data/ae/A/generator.pt"
    assert init["G_ba"]["from"] == "data/ae/B/generator.pt"
    run("train", workdir, {"ae": ae, "model": {**NETS["model"], "n_layers_d": 1}},
        "--variant", "ae_init")
    assert mlflow_params(workdir, "ae.init_from")[-1] == "source"
