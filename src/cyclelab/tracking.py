"""The one place that talks to MLflow.

* Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<repo>/mlflow.db``. ``<repo>`` is
  ``DVC_ROOT`` when DVC runs the stage: ``dvc exp run --queue/--temp`` executes in a copy under
  ``.dvc/tmp/exps`` that is deleted afterwards, and its runs must land in the real repo's store.
* Artifacts: ``<repo>/mlartifacts``, set as an absolute ``artifact_location`` when the
  experiment is created (a relative one would follow the temporary copy).
* The first creation of the SQLite store and experiment is serialised with a file lock:
  parallel queue workers on a fresh store otherwise race in MLflow's schema migration.
* One run per stage execution, tagged with stage, variant, domain, git commit, DVC experiment
  name, a group id shared by all stages of one pipeline execution, and a sweep id shared by the
  experiments of one sweep (:func:`sweep_id`).
* A tracking server that does not answer fails the stage within seconds with one line naming
  it, before any work; ``CYCLELAB_TRACKING_FALLBACK=local`` logs into the repo's ``mlflow.db``
  instead and says so. MLflow's own HTTP retries are bounded, so a server lost mid-run fails
  the stage instead of hanging it.
* No run stays RUNNING forever: SIGTERM/SIGINT end it KILLED (see :mod:`cyclelab.stage`), and a
  run whose process died without a word (SIGKILL, power loss) is marked KILLED by the next
  stage that starts on the same host: every run records its host, pid and process start time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cyclelab.errors import UserError
from cyclelab.io import process_alive

EXPERIMENT = "cyclelab"
# MLflow's usage telemetry would try the network at every run; nothing leaves this machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Store migrations log at INFO on first use; stage output stays about the stage.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# A lost server: at most 3 retries, 1-2-4 s apart, 15 s per request (MLflow: 7 retries with
# backoff 2 and 120 s timeouts, so a dead server held a stage for many minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
GROUP_TAG = "cyclelab.group"
SWEEP_TAG = "cyclelab.sweep"
HOST_TAG, PID_TAG, STARTED_TAG = "cyclelab.host", "cyclelab.pid", "cyclelab.process_start"
FALLBACK_ENV = "CYCLELAB_TRACKING_FALLBACK"
# Set by `python -m cyclelab study NAME` (cyclelab.presets) for every stage of the study: its
# runs carry the tag study=NAME, so MLflow groups a study's runs (search: tags.study = 'NAME').
STUDY_ENV, STUDY_TAG = "CYCLELAB_STUDY", "study"
PROBE_TIMEOUT_S = 5.0
_FELL_BACK: set[str] = set()  # servers this process already said it fell back from


class TrackingError(UserError):
    """The tracking store cannot be reached or used."""


def repo_root() -> Path:
    """The repository the stage belongs to: ``DVC_ROOT`` (set by DVC), else the nearest parent
    of the working directory holding ``.dvc`` or ``.git``, else the working directory."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".dvc").is_dir() or (folder / ".git").exists():
            return folder
    return cwd


def local_uri(root: Path | None = None) -> str:
    """The repo root's own store, ``sqlite:///<repo>/mlflow.db``."""
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def tracking_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` or the repo root's ``mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return local_uri(root)


@functools.cache
def _probe(uri: str) -> str:
    """'' when the server at ``uri`` answers HTTP within the timeout, else why not."""
    try:
        # Any HTTP answer (even 404 from a proxy) means something listens; /health is MLflow's.
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S):
            return ""
    except urllib.error.HTTPError:
        return ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason).splitlines()[0] if str(reason) else type(exc).__name__


def check_store(root: Path | None = None) -> tuple[str, bool]:
    """The store to log into and whether it is the repo's own; TrackingError (one line naming
    the URI) if ``MLFLOW_TRACKING_URI`` names an http(s) server that does not answer within
    :data:`PROBE_TIMEOUT_S`, unless ``CYCLELAB_TRACKING_FALLBACK=local`` (then the repo's
    ``mlflow.db``, said once on stderr). Called by every stage before any work."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return local_uri(root), True
    if not uri.startswith(("http://", "https://")):
        return uri, False
    why = _probe(uri)
    if not why:
        return uri, False
    if os.environ.get(FALLBACK_ENV, "") == "local":
        local = local_uri(root)
        if uri not in _FELL_BACK:
            _FELL_BACK.add(uri)
            print(f"tracking: {uri} unreachable ({why}); logging to {local} instead "
                  f"({FALLBACK_ENV}=local)", file=sys.stderr)
        return local, True
    raise TrackingError(f"MLflow tracking server {uri} unreachable ({why}); start it, fix "
                        f"MLFLOW_TRACKING_URI, or set {FALLBACK_ENV}=local to log into the "
                        "repo's mlflow.db")


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def group_id() -> str:
    """An id shared by the stages of one pipeline execution.

    ``CYCLELAB_GROUP`` wins (read on every call, so a later setting is never hidden by an
    earlier inferred id); else the nearest ancestor process running DVC (its pid and start
    time identify one ``dvc repro`` / ``dvc exp run``), else a fresh id for a lone stage run.
    """
    return os.environ.get("CYCLELAB_GROUP") or _inferred_group()


@functools.cache
def _inferred_group() -> str:
    """The group of this process without ``CYCLELAB_GROUP``: inferred once per process."""
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            args = proc.cmdline()
            # `dvc repro`, `.venv/bin/dvc exp run`, `python -m dvc ...`
            if any(Path(a).name == "dvc" for a in args[:3]):
                return f"dvc-{proc.pid}-{int(proc.create_time())}"
            proc = proc.parent()
    except Exception:  # process inspection is best effort (containers, permissions)
        pass
    return f"run-{uuid.uuid4().hex[:12]}"


def sweep_id() -> str:
    """The id shared by the experiments of one sweep, or '' outside experiments.

    ``CYCLELAB_SWEEP`` wins (set it for ``dvc queue start`` to name a sweep, or to tell apart
    two sweeps queued from one commit). Else, for a DVC experiment (``dvc exp run``, queued or
    not), its baseline commit: the grid ``dvc exp run -S 'a=1,2' -S 'b=3,4' --queue`` queues
    four experiments on one baseline, and DVC hands each one ``DVC_EXP_BASELINE_REV``. Commit
    the study before each sweep (the README says so) and a sweep is one baseline commit.
    """
    if os.environ.get("CYCLELAB_SWEEP"):
        return os.environ["CYCLELAB_SWEEP"]
    baseline = os.environ.get("DVC_EXP_BASELINE_REV", "")
    return f"exp-{baseline[:7]}" if baseline else ""


def _process_identity() -> dict[str, str]:
    """Host, pid and process start time: enough to tell later whether this process lives."""
    import psutil

    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            STARTED_TAG: f"{psutil.Process().create_time():.2f}"}


def close_orphans(client: Any, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs started on this host by processes that are gone (SIGKILL,
    power loss); return their ids. Runs of other hosts are left alone (their pids mean
    nothing here)."""
    host = socket.gethostname().replace("'", "")
    found = client.search_runs(
        [experiment_id], max_results=1000,
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
    closed = []
    for run in found:
        tags = run.data.tags
        if PID_TAG not in tags or process_alive(tags[PID_TAG], tags.get(STARTED_TAG, "")):
            continue
        client.set_tag(run.info.run_id, "cyclelab.closed_because",
                       f"process {tags[PID_TAG]} on {host} was gone (killed)")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


def _ensure_experiment(mlflow: Any, root: Path, own_store: bool) -> str:
    """Create the store and the experiment once, under a file lock; return the experiment id.

    ``own_store``: the store is the repo's ``mlflow.db`` (not a user-given tracking URI)."""
    lock_path = root / ".mlflow.lock" if own_store else Path(
        tempfile.gettempdir()) / "cyclelab-mlflow.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            experiment = mlflow.get_experiment_by_name(EXPERIMENT)
            if experiment is not None:
                return experiment.experiment_id
            location = None
            if own_store:
                location = (root / "mlartifacts").resolve().as_uri()
            return mlflow.create_experiment(EXPERIMENT, artifact_location=location)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class StageRun:
    """An open MLflow run of one stage execution (see :func:`stage_run`)."""

    def __init__(self, mlflow: Any) -> None:
        self._mlflow = mlflow

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log numeric metrics (non-finite values are skipped: MLflow rejects them)."""
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, int | float) and v == v and abs(v) != float("inf")}
        if clean:
            self._mlflow.log_metrics(clean, step=step)

    def log_image(self, image: Any, name: str) -> None:
        """Log a PIL image or uint8 HxWx3 array as ``name`` (a path inside the run)."""
        self._mlflow.log_image(image, artifact_file=name)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        """Copy a file or folder into the run's artifacts."""
        path = Path(path)
        if path.is_dir():
            self._mlflow.log_artifacts(str(path), artifact_path=folder or path.name)
        else:
            self._mlflow.log_artifact(str(path), artifact_path=folder)

    def log_text(self, text: str, name: str) -> None:  # noqa: D102
        self._mlflow.log_text(text, artifact_file=name)

    def log_model(self, module: Any, name: str, image_size: int) -> None:
        """Log a torch module as an MLflow model (``mlflow.pytorch``, exported with an example
        image batch in [-1, 1]); requirements pinned to the running torch so MLflow does not
        infer them (slow)."""
        import numpy as np
        import torch

        example = np.zeros((1, 3, image_size, image_size), dtype=np.float32)
        # torch.export notes that the example's batch size of 1 was specialised: not actionable.
        logging.getLogger("torch._export").setLevel(logging.ERROR)
        self._mlflow.pytorch.log_model(
            module.cpu().eval(), name=name, input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            validate_serving_input=False)

    def set_tags(self, tags: dict[str, str]) -> None:  # noqa: D102
        self._mlflow.set_tags(tags)


class NullRun:
    """A :class:`StageRun` that logs nothing (ranks other than 0 of a distributed run): the same
    methods with the same arguments, so a misspelt call fails on every rank alike."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:  # noqa: D102
        pass

    def log_image(self, image: Any, name: str) -> None:  # noqa: D102
        pass

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:  # noqa: D102
        pass

    def log_text(self, text: str, name: str) -> None:  # noqa: D102
        pass

    def log_model(self, module: Any, name: str, image_size: int) -> None:  # noqa: D102
        pass

    def set_tags(self, tags: dict[str, str]) -> None:  # noqa: D102
        pass


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], *, variant: str = "", domain: str = "",
              seed: int | None = None, description: str = "") -> Iterator[StageRun]:
    """Open the MLflow run of one stage execution, log flattened ``params`` and tags, and
    close it (status FAILED if the stage raises)."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = repo_root()
    uri, own_store = check_store(root)
    mlflow.set_tracking_uri(uri)
    experiment_id = _ensure_experiment(mlflow, root, own_store)
    client = mlflow.MlflowClient()
    orphans = close_orphans(client, experiment_id)
    if orphans:
        print(f"tracking: marked {len(orphans)} run(s) of killed stages KILLED "
              f"({', '.join(o[:8] for o in orphans)})", file=sys.stderr)
    name = "@".join(x for x in (stage, variant or domain) if x)
    if seed is not None:
        name += f"-{seed}"  # DVC's matrix name: train@<variant>-<seed>
    tags = {
        "stage": stage, "variant": variant, "domain": domain, GROUP_TAG: group_id(),
        "seed": "" if seed is None else str(seed),
        "git_commit": _git_commit(root), "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        STUDY_TAG: os.environ.get(STUDY_ENV, ""),
        "dvc_stage": os.environ.get("DVC_STAGE", name), SWEEP_TAG: sweep_id(),
        "mlflow.note.content": description, **_process_identity(),
    }
    mlflow.start_run(experiment_id=experiment_id, run_name=name,
                     tags={k: v for k, v in tags.items() if v})
    status = "FAILED"
    try:
        # MLflow caps a param value at 6000 characters; ours are short scalars.
        mlflow.log_params({k: str(v) for k, v in params.items()})
        yield StageRun(mlflow)
        status = "FINISHED"
    except KeyboardInterrupt:  # SIGINT, and SIGTERM (cyclelab.stage turns it into this)
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status)


def runs(stage: str | None = None) -> Any:
    """The runs of the cyclelab experiment as a DataFrame (for tests and reports)."""
    import mlflow

    mlflow.set_tracking_uri(check_store()[0])
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        import pandas as pd

        return pd.DataFrame()
    query = f"tags.stage = '{stage}'" if stage else ""
    return mlflow.search_runs([experiment.experiment_id], filter_string=query)


__all__ = ["stage_run", "StageRun", "TrackingError", "tracking_uri", "local_uri", "check_store",
           "repo_root", "group_id", "sweep_id", "close_orphans", "runs"]


class RunLog:
    """The loop's callbacks that log a stage's losses to its MLflow run."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def on_step(self, step: int, losses: dict[str, float]) -> None:  # noqa: D102
        self.run.log_metrics(losses, step=step)

    def on_epoch_end(self, epoch: int, row: dict) -> None:  # noqa: D102
        self.run.log_metrics({f"epoch_{k}": v for k, v in row.items()}, step=epoch + 1)
