"""The one place that talks to MLflow.

* Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<repo>/mlflow.db``. ``<repo>`` is
  ``DVC_ROOT`` when DVC runs the stage: ``dvc exp run --queue/--temp`` executes in a copy under
  ``.dvc/tmp/exps`` that is deleted afterwards, and its runs must land in the real repo's store.
* Artifacts: ``<repo>/mlartifacts``, set as an absolute ``artifact_location`` when the
  experiment is created (a relative one would follow the temporary copy).
* The first creation of the SQLite store and experiment is serialised with a file lock:
  parallel queue workers on a fresh store otherwise race in MLflow's schema migration.
* One run per stage execution, tagged with stage, variant, domain, git commit, DVC experiment
  name and a group id shared by all stages of one pipeline execution.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXPERIMENT = "cyclelab"
# MLflow's usage telemetry would try the network at every run; nothing leaves this machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Store migrations log at INFO on first use; stage output stays about the stage.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
GROUP_TAG = "cyclelab.group"


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


def tracking_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` or the repo root's ``mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.cache
def group_id() -> str:
    """An id shared by the stages of one pipeline execution.

    ``CYCLELAB_GROUP`` wins; else the nearest ancestor process running DVC (its pid and start
    time identify one ``dvc repro`` / ``dvc exp run``), else a fresh id for a lone stage run.
    """
    if os.environ.get("CYCLELAB_GROUP"):
        return os.environ["CYCLELAB_GROUP"]
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
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def set_tags(self, tags: dict[str, str]) -> None:  # noqa: D102
        self._mlflow.set_tags(tags)


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], *, variant: str = "", domain: str = "",
              description: str = "") -> Iterator[StageRun]:
    """Open the MLflow run of one stage execution, log flattened ``params`` and tags, and
    close it (status FAILED if the stage raises)."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = repo_root()
    # Read before set_tracking_uri, which exports MLFLOW_TRACKING_URI itself.
    own_store = not os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri(root))
    experiment_id = _ensure_experiment(mlflow, root, own_store)
    name = "@".join(x for x in (stage, variant or domain) if x)
    tags = {
        "stage": stage, "variant": variant, "domain": domain, GROUP_TAG: group_id(),
        "git_commit": _git_commit(root), "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "dvc_stage": os.environ.get("DVC_STAGE", name),
        "mlflow.note.content": description,
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=name,
                          tags={k: v for k, v in tags.items() if v}):
        # MLflow caps a param value at 6000 characters; ours are short scalars.
        mlflow.log_params({k: str(v) for k, v in params.items()})
        yield StageRun(mlflow)


def runs(stage: str | None = None) -> Any:
    """The runs of the cyclelab experiment as a DataFrame (for tests and reports)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        import pandas as pd

        return pd.DataFrame()
    query = f"tags.stage = '{stage}'" if stage else ""
    return mlflow.search_runs([experiment.experiment_id], filter_string=query)


__all__ = ["stage_run", "StageRun", "tracking_uri", "repo_root", "group_id", "runs"]
