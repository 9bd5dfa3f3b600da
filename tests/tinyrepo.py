"""A tiny working copy of the repository for end-to-end tests of DVC and MLflow.

``make_repo`` copies the tracked (and new, not ignored) files as they are now, so the tests
follow ``dvc.yaml`` whatever its stages; writes tiny params (one variant, one seed unless
told otherwise); and commits it all in a fresh git repository. ``sh`` runs a command there
with the virtual environment first on PATH and no tracking or DVC variables leaking in from
the caller."""

from __future__ import annotations

import copy
import json
import os
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cyclelab import config, presets
from tests.conftest import REPO, TINY, write_params

# Set by DVC or by a user's shell; a test sets what it needs itself.
LEAKY_ENV = ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_STAGE", "DVC_EXP_NAME",
             "DVC_EXP_BASELINE_REV", "CYCLELAB_GROUP", "CYCLELAB_SWEEP",
             "CYCLELAB_TRACKING_FALLBACK", "CYCLELAB_STUDY")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a command in a tiny repo: venv first on PATH, a git identity."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.update({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def sh(args: list[str], cwd: Path, *, timeout: float = 600, check: bool = True,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd``; on failure (when ``check``) show the end of its output."""
    proc = subprocess.run(args, cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, (f"{' '.join(args)} failed ({proc.returncode}):\n"
                                      f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` applied key by key (``variants`` replaced whole)."""
    out = presets.merge(base, {k: v for k, v in override.items() if k != "variants"})
    if "variants" in override:
        out["variants"] = override["variants"]
    return out


def tiny_params(**sections: Any) -> dict:
    """The repo's params.yaml with the tiny values, one variant and one seed, then
    ``sections`` merged in (``data={"digits": {...}}``)."""
    raw = merge(yaml.safe_load((REPO / "params.yaml").read_text()), copy.deepcopy(TINY))
    raw["variants"] = {"baseline": {"init": "random"}}
    raw = merge(raw, {"study": {"seeds": [0]}, **sections})
    # Every key of the schema, defaults included: dvc.yaml may name any of them.
    return config.to_dict(config.from_dict(raw))


def make_repo(dest: Path, params: dict | None = None) -> Path:
    """A committed git + DVC copy of the repository at ``dest`` with ``params``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if (REPO / name).is_file() and not name.startswith(("data/", "reports/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    write_params(dest / "params.yaml", params or tiny_params())
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-qm", "tiny study"], dest)
    return dest


def clone_dir(src: Path, dest: Path) -> Path:
    """A copy of a whole tiny repo (git, DVC cache, MLflow store) for a test to spoil."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


_REPRODUCED: dict[str, Path] = {}


def reproduced(tmp_path_factory: Any, target: str = "evaluate") -> Path:
    """A tiny repo with ``dvc repro <target>`` done, built once per test session and shared
    (read-only: copy it with :func:`clone_dir` before changing anything)."""
    if target not in _REPRODUCED:
        repo = make_repo(tmp_path_factory.mktemp(f"reproduced-{target}") / "repo")
        sh(["dvc", "repro", target], repo, timeout=900)
        # Committed, as a user commits a study before sweeping: experiments queued from this
        # commit reuse its results (persisted checkpoints are outside DVC's run-cache).
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-qm", f"dvc repro {target}"], repo)
        _REPRODUCED[target] = repo
    return _REPRODUCED[target]


def stage_names(repo: Path) -> list[str]:
    """The stages ``dvc.yaml`` defines (foreach/matrix expanded: ``evaluate@baseline-0``)."""
    return sh(["dvc", "stage", "list", "--name-only"], repo).stdout.split()


# The stages' commands in an order DVC may run them (every stage after what it depends on).
_DAG_SCRIPT = """
import json, networkx
from dvc.repo import Repo
with Repo(".") as repo:
    graph = repo.index.graph  # edges run from a stage to the stages it depends on
    order = reversed(list(networkx.lexicographical_topological_sort(graph, key=str)))
    print(json.dumps([stage.cmd for stage in order if getattr(stage, "cmd", None)]))
"""


def dag_commands(repo: Path) -> list[tuple[str, list[str]]]:
    """``(stage script, arguments)`` of every stage of ``repo``'s DAG, each after the stages it
    depends on, as DVC resolves ``dvc.yaml`` against the repo's params."""
    out = sh(["python", "-c", _DAG_SCRIPT], repo).stdout
    commands = []
    for line in json.loads(out):
        python, script, *args = shlex.split(line)
        assert python == "python" and script.startswith("pipeline/"), line
        commands.append((Path(script).stem, args))
    assert commands, out
    return commands


def run_dag_in_process(repo: Path, monkeypatch: Any) -> list[str]:
    """Run the stages of ``dvc repro`` in ``repo`` in this process, in DVC's order: the real
    stage code on the DAG that ``dvc.yaml`` makes of the repo's params, without a process and
    a torch import per stage. Returns the commands run; fails at the first stage that fails."""
    monkeypatch.chdir(repo)
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    ran = []
    for script, args in dag_commands(repo):
        monkeypatch.setattr(sys, "argv", [f"pipeline/{script}.py", *args])
        try:  # the script as `python pipeline/<script>.py` runs it
            runpy.run_path(str(repo / "pipeline" / f"{script}.py"), run_name="__main__")
            code = 0
        except SystemExit as done:
            code = done.code
        assert code == 0, f"{script} {' '.join(args)} exited {code}"
        ran.append(" ".join([script, *args]))
    return ran
