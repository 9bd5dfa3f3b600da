"""MLflow tracking: the store follows DVC_ROOT (queued experiments run in a temporary copy),
one run per stage with its tags, and a fresh store survives parallel first use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


# ---------------------------------------------------------------- robustness (issue 9)

STAGE_SCRIPT = """
import sys, time
from pathlib import Path
from cyclelab import tracking
from cyclelab.stage import run_stage

def main(cfg, args):
    with tracking.stage_run(sys.argv[2], {"train.lr": 0.1}, variant="v") as run:
        run.log_metrics({"loss": 1.0}, step=0)
        Path(sys.argv[1]).write_text("running")
        time.sleep(120)

sys.exit(run_stage(sys.argv[2], main, "a stage that waits to be killed", argv=sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory) -> Path:
    """One store for the tests below (a fresh SQLite store costs ~9 s of migrations here);
    each test uses its own stage names."""
    root = tmp_path_factory.mktemp("shared") / "repo"
    (root / ".dvc").mkdir(parents=True)
    return root


@pytest.fixture
def shared(shared_root, monkeypatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(shared_root))
    monkeypatch.setenv("CYCLELAB_GROUP", "group-1")
    return shared_root


@pytest.fixture
def params_file(tmp_path, tiny_raw) -> Path:
    from tests.conftest import write_params

    return write_params(tmp_path / "params.yaml", tiny_raw)


@pytest.fixture(autouse=True)
def fresh_probe():
    tracking._probe.cache_clear()
    tracking._FELL_BACK.clear()
    yield
    tracking._probe.cache_clear()


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers: the worst case (no quick refusal)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def start_waiting_stage(stage: str, params_file: Path) -> tuple[subprocess.Popen, Path]:
    marker = params_file.parent / f"started-{stage}"
    proc = subprocess.Popen([sys.executable, "-c", STAGE_SCRIPT, str(marker), stage,
                             "--params", str(params_file)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return proc, marker


def run_status(run_id: str) -> str:
    import mlflow

    return mlflow.MlflowClient(tracking.tracking_uri()).get_run(run_id).info.status


def test_a_silent_server_fails_the_check_naming_it_instead_of_hanging(silent_server,
                                                                      monkeypatch):
    """A server that accepts and never answers: the probe gives up (how soon is measured in
    bench/bench_limits.py); the 120 s guard only catches a hang, MLflow's own retries."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", silent_server)
    start = time.monotonic()
    with pytest.raises(tracking.TrackingError) as caught:
        tracking.check_store()
    assert time.monotonic() - start < 120
    message = str(caught.value)
    assert silent_server in message and "\n" not in message
    assert tracking.FALLBACK_ENV in message


def test_unreachable_server_stops_a_stage_before_any_work(tmp_path, params_file, monkeypatch):
    """The real stage script: one line on stderr, exit code 2, nothing written (its time is
    measured in bench/bench_limits.py)."""
    from tests.conftest import REPO

    with socket.socket() as sock:  # a closed port: refused at once
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run([sys.executable, str(REPO / "pipeline/download.py"), "--params",
                           str(params_file)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and uri in lines[0] and "unreachable" in lines[0], proc.stderr
    assert list(work.iterdir()) == []


def test_opt_in_fallback_logs_locally_and_says_so(shared, silent_server, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", silent_server)
    monkeypatch.setenv(tracking.FALLBACK_ENV, "local")
    with tracking.stage_run("fallback", {"a": 1}) as run:
        run.log_metrics({"n": 3})
    err = capsys.readouterr().err
    assert f"{silent_server} unreachable" in err and str(shared / "mlflow.db") in err
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert len(tracking.runs("fallback")) == 1


def test_http_retries_are_bounded():
    assert int(os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 3
    assert int(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 15


def test_sigterm_ends_the_run_killed(shared, params_file):
    proc, _ = start_waiting_stage("term", params_file)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("term: interrupted (SIGTERM)")
    found = tracking.runs("term")
    assert list(found["status"]) == ["KILLED"]


def test_sigkilled_run_is_marked_killed_by_the_next_stage(shared, params_file):
    proc, _ = start_waiting_stage("sigkilled", params_file)
    proc.kill()
    proc.communicate(timeout=60)
    (orphan,) = tracking.runs("sigkilled")["run_id"]
    assert run_status(orphan) == "RUNNING"  # nobody could say otherwise
    with tracking.stage_run("after_kill", {}, variant="v"):
        pass
    assert run_status(orphan) == "KILLED"
    assert tracking.runs("after_kill").iloc[0]["status"] == "FINISHED"


def test_a_live_run_is_not_taken_for_an_orphan(shared, params_file):
    proc, _ = start_waiting_stage("live", params_file)
    try:
        with tracking.stage_run("beside_live", {}, variant="v"):
            pass
        (live,) = tracking.runs("live")["run_id"]
        assert run_status(live) == "RUNNING"
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert run_status(live) == "KILLED"


@pytest.mark.slow
def test_four_concurrent_writers_lose_nothing(shared):
    """Four stages logging at once into one SQLite store: no 'database is locked', no lost
    run or metric. (Measured: 4 x 200 steps in 55 s and 8 x 50 in 98 s on 2 busy cores,
    0 errors: MLflow sets a 20 s SQLite busy timeout.)"""
    with tracking.stage_run("writers_init", {}):  # the store exists before parallel work
        pass
    code = ("from cyclelab import tracking\n"
            "with tracking.stage_run('writers', {f'p{i}': i for i in range(30)}) as r:\n"
            "    for step in range(10):\n"
            "        r.log_metrics({'loss': step / 10, 'other': 1.0}, step=step)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert not any("locked" in e for e in errors)
    found = tracking.runs("writers")
    assert list(found["status"]) == ["FINISHED"] * 4
    import mlflow

    client = mlflow.MlflowClient(tracking.tracking_uri())
    for run_id in found["run_id"]:
        assert len(client.get_metric_history(run_id, "loss")) == 10
        assert len(client.get_run(run_id).data.params) == 30


def test_sweep_id(monkeypatch):
    for name in ("CYCLELAB_SWEEP", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(name, raising=False)
    assert tracking.sweep_id() == ""
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123456789abcdef")
    assert tracking.sweep_id() == "exp-0123456"
    monkeypatch.setenv("CYCLELAB_SWEEP", "lr-grid")
    assert tracking.sweep_id() == "lr-grid"


def test_runs_carry_sweep_and_process_tags(shared, monkeypatch):
    monkeypatch.setenv("CYCLELAB_SWEEP", "grid-1")
    with tracking.stage_run("tagged", {}, variant="v"):
        pass
    row = tracking.runs("tagged").iloc[0]
    assert row[f"tags.{tracking.SWEEP_TAG}"] == "grid-1"
    assert row[f"tags.{tracking.PID_TAG}"] == str(os.getpid())
    assert row[f"tags.{tracking.HOST_TAG}"] == socket.gethostname()


def test_null_run_has_exactly_the_stage_runs_methods():
    """Ranks other than 0 log into a NullRun: the same public methods and signatures as the
    real run, each doing nothing, and a misspelt call fails as it would on rank 0."""
    import inspect

    def public(cls):
        return {name: inspect.signature(fn) for name, fn in vars(cls).items()
                if callable(fn) and not name.startswith("_")}

    assert public(tracking.NullRun) == public(tracking.StageRun)
    run = tracking.NullRun()
    assert run.log_metrics({"loss": 1.0}, step=3) is None
    assert run.set_tags({"precision": "fp32"}) is None
    with pytest.raises(AttributeError):
        run.log_metric({"loss": 1.0})  # the real method is log_metrics
    with pytest.raises(TypeError):
        run.log_image(None)  # a call the real run would refuse too


def test_cyclelab_group_wins_over_an_id_inferred_earlier(monkeypatch):
    monkeypatch.delenv("CYCLELAB_GROUP", raising=False)
    inferred = tracking.group_id()  # a lone run's id, remembered for this process
    monkeypatch.setenv("CYCLELAB_GROUP", "group-2")
    assert tracking.group_id() == "group-2"
    monkeypatch.delenv("CYCLELAB_GROUP")
    assert tracking.group_id() == inferred
