"""Team mode: a stage logging to a real `mlflow server` on 127.0.0.1 (SQLite backend,
artifacts in a folder), and data, models and experiments shared through a DVC folder remote:
`dvc push` / `dvc pull` / `dvc exp push` / `dvc exp pull` between two clones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, write_params
from tests.tinyrepo import clean_env, clone_dir, reproduced, sh, tiny_params

# One xdist worker runs test_faults, test_sweep and test_team: they share one reproduced study.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reproduced")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[str, Path]:
    """A real tracking server: ``mlflow server`` with a SQLite store and an artifacts folder."""
    root = tmp_path_factory.mktemp("server")
    uri = f"http://127.0.0.1:{free_port()}"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", uri.rsplit(":", 1)[1], "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(0.5)
    yield uri, root
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # uvicorn waits for idle keep-alive connections
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    log.close()


def test_a_stage_logs_to_a_real_tracking_server(server, tmp_path):
    import mlflow

    uri, root = server
    work = tmp_path / "work"
    work.mkdir()
    write_params(work / "params.yaml", tiny_params())
    proc = sh([sys.executable, str(REPO / "pipeline/download.py")], work,
              env=clean_env(MLFLOW_TRACKING_URI=uri, CYCLELAB_SWEEP="team-test"))
    assert "download: digits" in proc.stdout
    assert not (work / "mlflow.db").exists()  # nothing fell back to a local store
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("cyclelab")
    (run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'download'")
    assert run.info.status == "FINISHED"
    assert run.data.params["data.dataset"] == "digits"
    assert run.data.tags["cyclelab.sweep"] == "team-test"
    assert run.data.metrics["n_trainA"] == 12
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["SOURCE.json"]
    # Artifacts went through the server into its folder, not into the stage's working copy.
    assert list((root / "artifacts").rglob("SOURCE.json"))
    assert not (work / "mlartifacts").exists()


def count_pngs(folder: Path) -> int:
    return len(list(folder.glob("*.png")))


def test_push_pull_and_experiments_through_a_folder_remote(tmp_path_factory, tmp_path):
    """Machine A (a reproduced study) pushes data, models and an experiment; machine B clones
    the git repo, pulls the data and the experiment, and sees both."""
    a = clone_dir(reproduced(tmp_path_factory), tmp_path / "a")
    remote, origin = tmp_path / "dvc-remote", tmp_path / "origin.git"
    sh(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    sh(["dvc", "remote", "add", "-d", "shared", str(remote)], a)
    sh(["git", "add", ".dvc/config"], a)
    sh(["git", "commit", "-qm", "team remote"], a)
    sh(["git", "remote", "add", "origin", str(origin)], a)
    sh(["git", "push", "-q", "origin", "main"], a)
    # The shared study was reproduced up to evaluate (compare and report never ran).
    sh(["dvc", "push", "--with-deps", "evaluate"], a)
    sh(["dvc", "exp", "run", "-n", "fewer", "-S", "data.digits.train_per_domain=10", "prepare"],
       a)
    sh(["dvc", "exp", "push", "origin", "fewer"], a)

    b = tmp_path / "b"
    sh(["git", "clone", "-q", str(origin), str(b)], tmp_path)
    assert not (b / "data" / "prepared").exists()
    sh(["dvc", "pull", "--with-deps", "evaluate"], b)
    assert count_pngs(b / "data/prepared/trainA") == 10  # 12, 2 held out (data.val_fraction)
    assert next((b / "data/models").rglob("G_ab.pt")).stat().st_size > 0  # models too
    assert "up to date" in sh(["dvc", "status", "--with-deps", "evaluate"], b).stdout
    assert "fewer" in sh(["dvc", "exp", "list", "origin"], b).stdout
    sh(["dvc", "exp", "pull", "origin", "fewer"], b)
    refs = sh(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps"], b)
    (sha,) = [line.split()[0] for line in refs.stdout.splitlines() if line.endswith("/fewer")]
    sh(["git", "checkout", "-q", sha], b)
    sh(["dvc", "checkout", "--with-deps", "prepare"], b)  # the experiment ran up to prepare
    assert count_pngs(b / "data/prepared/trainA") == 8  # the experiment's 10, 2 held out
