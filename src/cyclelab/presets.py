"""Study presets: ``studies/<name>.yaml``, one complete params file per seed report's study.

A preset sets every key of the schema (a test checks it), each line annotated with where its
value comes from (the report, the CycleGAN paper where the report is silent, or pipeline
mechanics), so that nothing falls through from the demo defaults of ``params.yaml``. Its
``preset:`` block describes it for ``--list`` and is not a param; its optional ``seed_report:``
holds what the seed report states (its conditions, its numbers verbatim, its claims, what
differs in protocol), with which the study's report opens (:class:`SeedReport`). A preset's
``study.preset`` is its own name, so that the report knows which seed report it stands beside.

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
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from cyclelab import config
from cyclelab.directions import KEYS
from cyclelab.errors import UserError
from cyclelab.io import write_text
from cyclelab.metric_registry import report_columns
from cyclelab.tracking import STUDY_ENV

STUDIES = Path("studies")
SMOKE = "smoke"  # studies/smoke.yaml: an overlay, not a study
META_KEY = "preset"
META_FIELDS = ("report", "description", "dataset", "networks", "budget", "cpu_time", "gpu_time")
SEED_REPORT = "seed_report"  # the optional block of META_KEY that SeedReport parses
# The first line of a params.yaml this module wrote: such a file may be replaced by another
# study without committing it first (it is a copy of a committed preset).
HEADER = "# written by `python -m cyclelab study"


Value = float | int | str


@dataclasses.dataclass(frozen=True)
class Ours:
    """Our row beside one of a seed report's: ``metric`` of ``variant`` in ``direction`` (from
    ``reports/metrics/<variant>.json``), or one metric per value column of its table (None
    where we have none), shown as one "ours" column per column of its."""

    variant: str
    direction: str
    metric: str | tuple[str | None, ...]


@dataclasses.dataclass(frozen=True)
class ReportRow:
    """One row of a seed report's table: its label and values verbatim, and ours if we have it."""

    label: str
    values: tuple[Value, ...]
    ours: Ours | None = None


@dataclasses.dataclass(frozen=True)
class ReportTable:
    """One table of a seed report: its title, its value columns' names and its rows."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[ReportRow, ...]


@dataclasses.dataclass(frozen=True)
class SeedReport:
    """``preset.seed_report``: what the report stage opens with.

    ``report`` names the seed report (``preset.report``); ``conditions`` is one paragraph of
    its conditions (data, size, N, epochs, hardware, FID network), verbatim or closely quoted;
    ``tables`` its numbers verbatim; ``claims`` its claims, quoted; ``protocol`` what differs
    between its protocol and ours (Inception network, resize, N, seeds).
    """

    report: str
    conditions: str
    protocol: tuple[str, ...]
    tables: tuple[ReportTable, ...] = ()
    claims: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Preset:
    """One study: its name, its description (``preset:``), its seed report when the block has
    one, and its params (the rest)."""

    name: str
    meta: dict[str, str]
    params: dict[str, Any]
    smoke: bool = False
    seed_report: SeedReport | None = None

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
    if unknown := sorted(set(meta) - set(META_FIELDS) - {SEED_REPORT}, key=str):
        raise UserError(f"{path}: {META_KEY}.{unknown[0]}: unknown key; allowed: "
                        f"{', '.join((*META_FIELDS, SEED_REPORT))}")
    if smoke:
        raw = _smoke_stages(merge(raw, _read(root / STUDIES / f"{SMOKE}.yaml")))
    try:
        cfg = config.from_dict(raw)
    except UserError as exc:
        raise UserError(f"{path}{' + smoke' if smoke else ''}: {exc}") from None
    if cfg.study.preset != name:
        raise UserError(f"{path}: study.preset is {cfg.study.preset!r}, expected {name!r} (the "
                        "file's name: the report opens with that preset's seed report)")
    seed_report = None
    if meta.get(SEED_REPORT) is not None:
        seed_report = parse_seed_report(meta[SEED_REPORT], str(meta["report"]), cfg.runs,
                                        f"{path}: {META_KEY}.{SEED_REPORT}")
    return Preset(name, {k: str(meta[k]) for k in META_FIELDS}, raw, smoke, seed_report)


def _strings(value: Any, where: str, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v.strip() for v in value)):
        raise UserError(f"{where}: expected a list of one or more non-empty strings, got "
                        f"{value!r}")
    return tuple(value)


def _mapping(value: Any, where: str, required: tuple[str, ...],
             optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a mapping with {', '.join(required + optional)}, "
                        f"got {value!r}")
    if unknown := sorted(set(value) - set(required) - set(optional), key=str):
        raise UserError(f"{where}.{unknown[0]}: unknown key; allowed: "
                        f"{', '.join(required + optional)}")
    if missing := [k for k in required if k not in value]:
        raise UserError(f"{where}: missing {missing[0]}")
    return value


def _ours(value: Any, where: str, columns: tuple[str, ...], runs: Collection[str]) -> Ours:
    ours = _mapping(value, where, ("variant", "direction", "metric"))
    if ours["variant"] not in runs:
        raise UserError(f"{where}.variant: got {ours['variant']!r}, expected a variant or "
                        f"finetune of this preset: {', '.join(runs)}")
    if ours["direction"] not in KEYS:
        raise UserError(f"{where}.direction: got {ours['direction']!r}, expected one of "
                        f"{', '.join(KEYS)}")
    scores = [c.key for c in report_columns()]
    metric = ours["metric"]
    if isinstance(metric, list):  # one per column of its table
        if len(metric) != len(columns) or not any(metric) \
                or not all(m is None or m in scores for m in metric):
            raise UserError(f"{where}.metric: got {metric!r}, expected one score or null per "
                            f"column ({', '.join(columns)}), scores: {', '.join(scores)}")
        return Ours(ours["variant"], ours["direction"], tuple(metric))
    if metric not in scores:
        raise UserError(f"{where}.metric: got {metric!r}, expected a score of "
                        f"reports/metrics/<variant>.json: {', '.join(scores)} (or a list: "
                        "one per column)")
    return Ours(ours["variant"], ours["direction"], metric)


def _table(value: Any, where: str, runs: Collection[str]) -> ReportTable:
    table = _mapping(value, where, ("title", "columns", "rows"))
    if not isinstance(table["title"], str) or not table["title"].strip():
        raise UserError(f"{where}.title: expected a non-empty string, got {table['title']!r}")
    columns = _strings(table["columns"], f"{where}.columns", required=True)
    if not isinstance(table["rows"], list) or not table["rows"]:
        raise UserError(f"{where}.rows: expected a list of one or more rows, got "
                        f"{table['rows']!r}")
    rows = []
    for i, raw in enumerate(table["rows"]):
        at = f"{where}.rows[{i}]"
        row = _mapping(raw, at, ("label", "values"), ("ours",))
        if not isinstance(row["label"], str) or not row["label"].strip():
            raise UserError(f"{at}.label: expected a non-empty string, got {row['label']!r}")
        values = row["values"]
        if not isinstance(values, list) or len(values) != len(columns) or not all(
                isinstance(v, int | float | str) and not isinstance(v, bool) for v in values):
            raise UserError(f"{at}.values: got {values!r}, expected {len(columns)} numbers or "
                            f"strings, one per column ({', '.join(columns)})")
        ours = _ours(row["ours"], f"{at}.ours", columns, runs) if "ours" in row else None
        rows.append(ReportRow(row["label"], tuple(values), ours))
    if len({isinstance(r.ours.metric, tuple) for r in rows if r.ours}) > 1:
        raise UserError(f"{where}: every ours.metric of a table is one score, or every one a "
                        "list (one per column)")
    return ReportTable(table["title"], columns, tuple(rows))


def parse_seed_report(value: Any, report: str, runs: Collection[str], where: str
                      ) -> SeedReport:
    """``preset.seed_report`` of a preset whose variants and finetunes are ``runs``, validated:
    a UserError of one line naming ``where`` (the file and block) and the key at fault."""
    block = _mapping(value, where, ("conditions", "protocol"), ("tables", "claims"))
    if not isinstance(block["conditions"], str) or not block["conditions"].strip():
        raise UserError(f"{where}.conditions: expected one paragraph (a string), got "
                        f"{block['conditions']!r}")
    tables = block.get("tables") or []
    if not isinstance(tables, list):
        raise UserError(f"{where}.tables: expected a list of tables, got {tables!r}")
    return SeedReport(
        report=report, conditions=" ".join(block["conditions"].split()),
        protocol=_strings(block["protocol"], f"{where}.protocol", required=True),
        tables=tuple(_table(t, f"{where}.tables[{i}]", runs) for i, t in enumerate(tables)),
        claims=_strings(block.get("claims"), f"{where}.claims", required=False))


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
