"""Study presets: ``studies/<name>.yaml``, one complete params file per seed report's study.

A preset sets every key of the schema (a test checks it), each line annotated with where its
value comes from (the report, the CycleGAN paper where the report is silent, or pipeline
mechanics), so that nothing falls through from the demo defaults of ``params.yaml``. Its
``preset:`` block describes it for ``--list`` and is not a param.

``python -m cyclelab study NAME`` writes the preset to ``params.yaml`` and runs
``dvc exp run -n NAME``: the study is a DVC experiment (``dvc exp show`` compares studies by
name) and every MLflow run it opens carries the tag ``study=NAME``. ``--smoke`` merges
``studies/smoke.yaml`` on top (the embedded digits, tiny networks, one epoch): the study's
whole DAG in about a minute, for tests and for a first look before hours of training.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cyclelab import config
from cyclelab.errors import UserError
from cyclelab.io import write_text
from cyclelab.tracking import STUDY_ENV

STUDIES = Path("studies")
SMOKE = "smoke"  # studies/smoke.yaml: an overlay, not a study
META_KEY = "preset"
META_FIELDS = ("report", "description", "dataset", "networks", "budget", "cpu_time", "gpu_time")
# The first line of a params.yaml this module wrote: such a file may be replaced by another
# study without committing it first (it is a copy of a committed preset).
HEADER = "# written by `python -m cyclelab study"


@dataclasses.dataclass(frozen=True)
class Preset:
    """One study: its name, its description (``preset:``) and its params (the rest)."""

    name: str
    meta: dict[str, str]
    params: dict[str, Any]
    smoke: bool = False

    @property
    def experiment(self) -> str:
        """The DVC experiment name (``seed000``, ``seed000-smoke``)."""
        return f"{self.name}-smoke" if self.smoke else self.name


def names(root: Path = Path(".")) -> list[str]:
    """The presets in ``studies/``, sorted (the smoke overlay excluded)."""
    return sorted(p.stem for p in (root / STUDIES).glob("*.yaml") if p.stem != SMOKE)


def _read(path: Path) -> dict[str, Any]:
    raw = config.read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of params, got {type(raw).__name__}")
    return raw


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` applied key by key; a mapping in both merges, anything else
    (lists, ``variants`` entries' scalars) is replaced."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _smoke_stages(params: dict[str, Any]) -> dict[str, Any]:
    """What a list or a per-variant key in smoke.yaml cannot say: staged training (seed 004)
    keeps its stages, one epoch each with a candidate after it; a variant or finetune that sets
    its own ``train.epochs`` (seed 001's versions: 56, 75) trains one epoch like the rest."""
    train = params.get("train") or {}
    stages = len(train.get("stage_epochs") or [])
    if stages:
        train = {**train, "stage_epochs": [1] * stages, "stage_eval_every": [1] * stages}
        params = {**params, "train": train}
    for group in ("variants", "finetunes"):
        runs = params.get(group) or {}
        if any("epochs" in ((run or {}).get("train") or {}) for run in runs.values()):
            params = {**params, group: {
                name: {**run, "train": {**run["train"], "epochs": 1}}
                if "epochs" in (run.get("train") or {}) else run
                for name, run in runs.items()}}
    return params


def load(name: str, root: Path = Path("."), *, smoke: bool = False) -> Preset:
    """Read and validate preset ``name`` (with the smoke overlay when ``smoke``)."""
    path = root / STUDIES / f"{name}.yaml"
    if name == SMOKE or not path.is_file():
        known = ", ".join(names(root)) or "none"
        raise UserError(f"study {name!r}: no such preset in {root / STUDIES}/ (known: {known}; "
                        "python -m cyclelab study --list)")
    raw = _read(path)
    meta = raw.pop(META_KEY, None)
    if not isinstance(meta, dict) or set(META_FIELDS) - set(meta):
        raise UserError(f"{path}: needs a '{META_KEY}:' block with {', '.join(META_FIELDS)}")
    if smoke:
        raw = _smoke_stages(merge(raw, _read(root / STUDIES / f"{SMOKE}.yaml")))
    try:
        config.from_dict(raw)
    except UserError as exc:
        raise UserError(f"{path}{' + smoke' if smoke else ''}: {exc}") from None
    return Preset(name, {k: str(meta[k]) for k in META_FIELDS}, raw, smoke)


def missing_keys(params: dict[str, Any]) -> list[str]:
    """Schema keys a preset leaves to the defaults (a complete preset has none)."""
    present = set(config.flatten(params))
    out = []
    for p in config.params():
        if "<name>" in p.key:
            continue  # keys of a variants/finetunes entry: the entries set what they change
        if p.key not in present and not any(k.startswith(p.key + ".") for k in present):
            out.append(p.key)
    return out


def listing(root: Path = Path(".")) -> str:
    """``--list``: every preset with its report, dataset, networks, budget and times."""
    blocks = []
    for name in names(root):
        meta = load(name, root).meta
        rows = "\n".join(f"    {k + ':':<13}{meta[k]}" for k in META_FIELDS if k != "description")
        blocks.append(f"{name}  {meta['description']}\n{rows}\n"
                      f"    command:     python -m cyclelab study {name}")
    return "\n\n".join(blocks)


def params_text(preset: Preset) -> str:
    """What ``params.yaml`` holds for ``preset``: a header naming it, then the params."""
    source = f"studies/{preset.name}.yaml" + (" + studies/smoke.yaml" if preset.smoke else "")
    return (f"{HEADER} {preset.name}{' --smoke' if preset.smoke else ''}` from {source}.\n"
            "# Edit the preset, not this copy; `git checkout params.yaml` restores the default "
            "study.\n" + yaml.safe_dump(preset.params, sort_keys=False))


def check_params_file(path: Path) -> None:
    """Refuse to overwrite a params file holding edits that no commit or preset keeps."""
    if not path.exists() or path.read_text(encoding="utf-8").startswith(HEADER):
        return
    proc = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)],
                          capture_output=True, cwd=path.parent or ".")
    if proc.returncode == 1:
        raise UserError(f"{path} has uncommitted edits that the study would overwrite: commit "
                        f"them, or `git checkout {path}`, then run the study again")


def run(name: str, *, smoke: bool = False, dry_run: bool = False,
        dvc_args: tuple[str, ...] = (), root: Path = Path(".")) -> int:
    """Write preset ``name`` to ``params.yaml`` and run it as ``dvc exp run -n <name>``."""
    preset = load(name, root, smoke=smoke)
    target = root / config.PARAMS_FILE
    command = ["dvc", "exp", "run", "-n", preset.experiment, *dvc_args]
    if dry_run:
        print(params_text(preset), end="")
        print(f"# would run: {' '.join(command)}", file=sys.stderr)
        return 0
    check_params_file(target)
    write_text(target, params_text(preset))
    print(f"study {preset.experiment}: params.yaml <- studies/{name}.yaml"
          f"{' + smoke.yaml' if smoke else ''}; {' '.join(command)}", flush=True)
    env = {**os.environ, STUDY_ENV: preset.experiment}
    return subprocess.run(command, cwd=root, env=env).returncode
