"""Faults: a stage killed with SIGKILL part-way (download mid-file, prepare mid-folder,
autoencoder pretraining mid-epoch, evaluation mid-way) never leaves a half-written output that
a rerun of `dvc repro` would use, and the rerun completes; corrupt checkpoints, metrics files,
reference statistics and prepared images are detected and named in one line.

The kills are real: `dvc repro -s <stage>` runs in its own process group, the test polls for a
file that proves the stage is part-way (a `.part` download, a temporary output folder, a
checkpoint), then SIGKILLs the whole group. No hook in the code under test."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cyclelab.errors import DataError
from cyclelab.training.checkpoint import load_state
from tests.conftest import write_params
from tests.httpserver import LocalServer
from tests.tinyrepo import clean_env, clone_dir, reproduced, sh, stage_names, tiny_params

# One xdist worker runs test_faults, test_sweep and test_team: they share one reproduced study.
pytestmark = pytest.mark.xdist_group("reproduced")

# ------------------------------------------------------------- corrupt files (fast, in-process)


def spoil(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else b"\x00garbage" * 16)


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_corrupt_generator_weights_are_named(tmp_path, how):
    from cyclelab.models.init import load_weights

    path = tmp_path / "G_ab.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    spoil(path, how)
    with pytest.raises(DataError, match=f"^{path}: corrupt or not a weights file .*rerun train@v"):
        load_weights(torch.nn.Linear(3, 3), path, "train@v")


def test_weights_holding_code_are_refused(tmp_path):
    """A pickle that would run code on load is refused (weights_only), not executed."""
    from cyclelab.models.init import load_weights

    path = tmp_path / "G_ab.pt"
    torch.save({"weight": torch.zeros(3, 3), "hook": print}, path)
    with pytest.raises(DataError, match="corrupt or not a weights file"):
        load_weights(torch.nn.Linear(3, 3), path, "train@v")


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_corrupt_training_checkpoint_stops_named_and_is_kept(tmp_path, how):
    """Not resumed and not discarded: with persist: true it may hold hours of training."""
    from cyclelab.training import checkpoint

    path = tmp_path / "ae_A.pt"
    checkpoint.save(path, {"fingerprint": "f", "epoch": 0, "nets": {}})
    spoil(path, how)
    spoiled = path.read_bytes()
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_if_matching(path, "f")
    note = str(err.value)
    assert str(path) in note and "unreadable" in note and "\n" not in note
    assert "train.resume: never" in note and path.read_bytes() == spoiled
    assert checkpoint.load_if_matching(path, "f", resume="never")[0] is None


def test_corrupt_metrics_file_is_named(tmp_path):
    from cyclelab.io import read_json, write_json

    path = tmp_path / "s0.json"
    write_json(path, {"A_to_B": {"fid": 1.0}})
    path.write_text(path.read_text()[:10])  # cut mid-write (what atomic writes prevent)
    with pytest.raises(DataError, match=f"^{path}: not valid JSON .*dvc repro evaluate"):
        read_json(path, "dvc repro evaluate")


def test_corrupt_reference_statistics_are_named(tmp_path):
    from cyclelab.metrics.fid import load_stats, save_stats

    path = tmp_path / "A.npz"
    save_stats(path, {"mu": np.zeros(4), "sigma": np.eye(4), "n": 4, "weights_sha256": "x"})
    assert load_stats(path)["n"] == 4
    spoil(path, "truncate")
    with pytest.raises(DataError, match=f"^{path}: .*rerun the reference stage"):
        load_stats(path)


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_corrupt_prepared_image_is_named(tmp_path, how):
    from cyclelab.data.dataset import load_folder

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    spoil(tmp_path / "1.png", how)
    with pytest.raises(DataError, match=f"^{tmp_path / '1.png'}: corrupt or not an image"):
        load_folder(tmp_path)


# ------------------------------------------------------------------ kill and rerun (slow)

@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A reproduced tiny study with more images (so that prepare and an autoencoder epoch take
    long enough to be caught part-way) and enough epochs to be killed between them."""
    repo = clone_dir(reproduced(tmp_path_factory), tmp_path_factory.mktemp("faults") / "repo")
    write_params(repo / "params.yaml", tiny_params(
        data={"digits": {"train_per_domain": 150, "test_per_domain": 20}}, ae={"epochs": 4}))
    sh(["dvc", "repro", "-s", "download"], repo)
    return repo


def kill_when(repo: Path, args: list[str], ready: Callable[[], bool], *, after: float = 0.0,
              timeout: float = 300) -> str:
    """Run ``args`` in its own process group, SIGKILL the group once ``ready()`` (and ``after``
    more seconds); return its output. Fails if it ends before being killed."""
    log = repo.parent / "killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=repo, env=clean_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"ended before the kill point:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        time.sleep(after)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return log.read_text()


def pngs(folder: Path) -> int:
    return len(list(folder.glob("*.png")))


@pytest.mark.slow
def test_prepare_killed_mid_folder(repo):
    def part_way() -> bool:
        return any(tmp.is_dir() and any(tmp.glob("*/*.png"))
                   for tmp in (repo / "data").glob(".prepared.tmp-*"))

    kill_when(repo, ["dvc", "repro", "-s", "prepare"], part_way)
    leftovers = list((repo / "data").glob(".prepared.tmp-*"))
    assert leftovers  # killed part-way, writing its temporary folder...
    assert not (repo / "data/prepared").exists()  # ...while the declared output was absent
    out = sh(["dvc", "repro", "-s", "prepare"], repo).stdout
    assert "prepare: images: trainA 120, trainB 120, valA 30, valB 30, testA 20, testB 20" in out
    for split, n in (("trainA", 120), ("trainB", 120), ("valA", 30), ("valB", 30),
                     ("testA", 20), ("testB", 20)):
        assert pngs(repo / "data/prepared" / split) == n
    manifest = (repo / "data/prepared/manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 340
    assert not any(path.exists() for path in leftovers)  # removed by the rerun, never used
    assert "up to date" in sh(["dvc", "status", "prepare"], repo).stdout


@pytest.mark.slow
def test_pretrain_ae_killed_mid_epoch_resumes(repo):
    checkpoint = repo / "data/checkpoints/ae_A.pt"
    before = checkpoint.stat().st_mtime_ns if checkpoint.exists() else 0

    def first_epoch_saved() -> bool:
        return checkpoint.exists() and checkpoint.stat().st_mtime_ns != before

    # 150 images in batches of 4: an epoch is 38 steps; 0.3 s after epoch 1 is inside epoch 2.
    kill_when(repo, ["dvc", "repro", "-s", "pretrain_ae@A"], first_epoch_saved, after=0.3)
    assert not (repo / "data/ae/A").exists()
    saved = load_state(checkpoint)
    assert 0 <= saved["epoch"] < 3
    out = sh(["dvc", "repro", "-s", "pretrain_ae@A"], repo).stdout
    assert f"resuming from data/checkpoints/ae_A.pt after epoch {saved['epoch'] + 1}" in out
    rows = (repo / "reports/plots/ae_A.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3", "4"]
    assert (repo / "data/ae/A/generator.pt").exists()


@pytest.mark.slow
def test_evaluate_killed_mid_way(repo):
    (stage,) = [name for name in stage_names(repo) if name.startswith("evaluate@")]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    metrics = [repo / out["path"] for out in lock["outs"] if out["path"].endswith(".json")]
    translated = [repo / out["path"] for out in lock["outs"]
                  if out["path"].startswith("data/translated")][0]

    def second_direction_started() -> bool:
        return any(translated.parent.glob(f".{translated.name}.tmp-*/B_to_A"))

    kill_when(repo, ["dvc", "repro", "-s", "-f", stage], second_direction_started)
    leftovers = list(translated.parent.glob(f".{translated.name}.tmp-*"))
    assert leftovers
    assert not translated.exists()
    for path in metrics:  # absent or whole: never a half-written metrics file
        if path.exists():
            json.loads(path.read_text())
    sh(["dvc", "repro", "-s", stage], repo)
    for path in metrics:
        scores = json.loads(path.read_text())
        assert np.isfinite(scores["A_to_B"]["fid"]) and np.isfinite(scores["B_to_A"]["fid"])
    assert pngs(translated / "A_to_B") > 0 and pngs(translated / "B_to_A") > 0
    assert not any(path.exists() for path in leftovers)
    assert "up to date" in sh(["dvc", "status", stage], repo).stdout


@pytest.mark.slow
def test_evaluate_names_a_corrupt_generator(repo):
    (stage,) = [name for name in stage_names(repo) if name.startswith("evaluate@")]
    variant, seed = stage.split("@")[1].rsplit("-", 1)
    weights = next((repo / "data/models").rglob("G_ab.pt"))
    original = weights.read_bytes()
    try:
        spoil(weights, "truncate")
        proc = sh([sys.executable, "pipeline/evaluate.py", "--variant", variant, "--seed", seed],
                  repo, check=False)
    finally:
        weights.write_bytes(original)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "G_ab.pt: corrupt or not a weights file" in lines[0]


def images_zip() -> bytes:
    """A dataset archive of noise PNGs in the four split folders (~80 kB, incompressible)."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for split in ("trainA", "trainB", "testA", "testB"):
            for i in range(6):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(png, "PNG")
                zf.writestr(f"tiny/{split}/{i}.png", png.getvalue())
    return buffer.getvalue()


@pytest.mark.slow
def test_download_killed_mid_file_resumes(repo):
    payload = images_zip()
    with LocalServer({"/tiny.zip": payload}) as server:
        # First GET: 30 kB, then the connection drops; the retry stalls: the stage is caught
        # holding a 30 kB .part file, waiting on the retry's body.
        server.drops["/tiny.zip"] = [30_000]
        server.stalls["/tiny.zip"] = [0, 300]
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["data"]["source"] = server.url + "/tiny.zip"
        write_params(repo / "params.yaml", params)
        cache = repo / ".cache/downloads"

        def mid_file() -> bool:  # the retry has asked (not still in its back-off)
            return len(server.requests) == 2 and any(p.stat().st_size == 30_000
                                                     for p in cache.glob("*.part"))

        kill_when(repo, ["dvc", "repro", "-s", "download"], mid_file, after=0.2)
        assert not (repo / "data/raw").exists()
        assert not [p for p in cache.iterdir() if not p.name.endswith(".part")]
        out = sh(["dvc", "repro", "-s", "download"], repo).stdout
        # The rerun's request resumed the .part file, not restarted it.
        assert server.requests[2:] == [("/tiny.zip", "bytes=30000-")], server.requests
    assert "trainA 6, trainB 6, testA 6, testB 6" in out
    source = json.loads((repo / "data/raw/SOURCE.json").read_text())
    assert source["sha256"] == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path, reaped):
    """A SIGKILLed stage leaves its temporary folder or file; the next write of the same
    target removes it (its process is gone, or a zombie nobody reaps, as orphans stay in
    containers whose PID 1 does not reap), never one of a live process."""
    import psutil

    from cyclelab.io import atomic_dir, atomic_path

    target = tmp_path / "prepared"
    code = ("import os, sys\nfrom cyclelab.io import atomic_dir, atomic_path\n"
            "with atomic_dir(sys.argv[1]) as tmp:\n    (tmp / 'half.png').write_bytes(b'x')\n"
            "    with atomic_path(sys.argv[1] + '.pt') as f:\n        f.write_bytes(b'y')\n"
            "        os.kill(os.getpid(), 9)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)])
    if reaped:
        writer.wait(timeout=60)
    else:
        deadline = time.monotonic() + 60
        while psutil.Process(writer.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 2 and all(".tmp-" in name for name in leftovers), leftovers
    with atomic_dir(target) as tmp, atomic_path(tmp_path / "prepared.pt") as live:
        (tmp / "whole.png").write_bytes(b"ok")
        live.write_bytes(b"ok")
        # A temporary of a live process (this one) is never taken for a leftover.
        with atomic_dir(target) as inner:
            assert tmp.exists() and inner != tmp
            (inner / "whole.png").write_bytes(b"ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared", "prepared.pt"]
    writer.wait(timeout=60)
