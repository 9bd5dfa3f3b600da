"""Bad params, fuzzed over the schema with hypothesis: whatever the mistake (a wrong type, a
value out of range or not among the choices, an unknown key, a path-like variant name), every
stage stops before any work with one line on stderr, exit code 2, and nothing written.

In-process through ``run_stage`` (milliseconds per example), plus a few real stage scripts."""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyclelab import config
from cyclelab.stage import EXIT_USER_ERROR, run_stage
from tests.conftest import REPO, TINY


def leaves() -> list[tuple]:
    """(key path, type, constraints) of every leaf field of the schema, from the params table
    that pydantic's schema yields (``config.params``): ``choices``, ``ge``/``gt``/``le``/``lt``,
    and for lists ``item_type``, ``item_choices``, ``item_ge``..."""
    types = {"int": int, "float": float, "str": str, "bool": bool, "list[int]": list,
             "list[str]": list}
    out = []
    for p in config.params():
        if p.key.split(".")[0] in ("variants", "finetunes"):  # mappings of names: fuzzed below
            continue
        meta = {**dict(p.bounds), **({"choices": p.choices} if p.choices else {})}
        if p.type == "list[int]":
            meta["item_type"] = int
        out.append((tuple(p.key.split(".")), types[p.type], meta))
    return out


def sections(cls: type = config.Config, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of every mapping in the schema (where an unknown key may be added)."""
    out = [prefix]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += sections(hints[f.name], (*prefix, f.name))
    return out


LEAVES = leaves()
SECTIONS = sections()
# Values YAML can carry (no huge integers: Python refuses to print > 4300 digits).
junk = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                 st.lists(st.integers(-5, 5), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def bad_value(tp: type, meta: dict) -> st.SearchStrategy:
    """Values that the schema must refuse for a field of type ``tp`` with ``meta``."""
    wrong_type = {
        int: junk.filter(lambda v: not isinstance(v, int) or isinstance(v, bool)),
        float: junk.filter(lambda v: not isinstance(v, int | float) or isinstance(v, bool)
                           or v != v or abs(v) == float("inf")),
        str: junk.filter(lambda v: not isinstance(v, str)),
        bool: junk.filter(lambda v: not isinstance(v, bool)),
        list: junk.filter(lambda v: not isinstance(v, list)),
    }[tp]
    options = [wrong_type]
    if "choices" in meta:
        options.append(st.text(max_size=12).filter(lambda v: v not in meta["choices"]))
    number = st.integers if tp is int else (lambda **kw: st.floats(allow_nan=False, **kw))
    if tp in (int, float):
        if "ge" in meta:
            options.append(number(max_value=meta["ge"] - 1 if tp is int else meta["ge"],
                                  **({} if tp is int else {"exclude_max": True})))
        if "gt" in meta:
            options.append(number(max_value=meta["gt"]))
        if "le" in meta:
            options.append(number(min_value=meta["le"] + 1 if tp is int else meta["le"],
                                  **({} if tp is int else {"exclude_min": True})))
        if "lt" in meta:
            options.append(number(min_value=meta["lt"]))
    if tp is list and "item_type" in meta:
        options.append(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=3))
    if tp is list and "item_choices" in meta:
        options.append(st.lists(st.text(max_size=6).filter(
            lambda v: v not in meta["item_choices"]), min_size=1, max_size=3))
    return st.one_of(options)


def put(raw: dict, path: tuple[str, ...], value: object) -> None:
    for key in path[:-1]:
        raw = raw.setdefault(key, {})
    raw[path[-1]] = value


@st.composite
def bad_params(draw) -> dict:
    """The tiny params with exactly one mistake in them."""
    raw = copy.deepcopy(TINY)
    kind = draw(st.sampled_from(["value", "value", "unknown_key", "variant_name",
                                 "variant_override"]))
    if kind == "value":
        path, tp, meta = draw(st.sampled_from(LEAVES))
        put(raw, path, draw(bad_value(tp, meta)))
    elif kind == "unknown_key":
        section = draw(st.sampled_from(SECTIONS))
        target = raw
        for key in section:
            target = target.setdefault(key, {})
        known = {f.name for f in dataclasses.fields(config.Config)} if not section else None
        name = draw(st.text(min_size=1, max_size=12).filter(
            lambda n: n not in (known or set()) and not any(p[:-1] == section and p[-1] == n
                                                            for p, _, _ in LEAVES)))
        if not section and name in ("variants", "finetunes"):
            name += "_x"
        target[name] = draw(junk)
    elif kind == "variant_name":
        name = draw(st.one_of(
            st.sampled_from(["../x", "a/b", "", ".", "..", "-rf", "x y", "/etc", "a\\b", "é"]),
            st.text(min_size=1, max_size=10).filter(
                lambda n: not (n[0].isascii() and n[0].isalnum()) or not all(
                    c.isascii() and (c.isalnum() or c in "_-") for c in n))))
        if draw(st.booleans()):
            raw["variants"] = {name: {"init": "random"}}
        else:  # a finetune of the tiny params' baseline
            raw["finetunes"] = {name: {"init": "baseline"}}
    else:  # an override inside a variant, fuzzed like the train.* value it overrides
        path, tp, meta = draw(st.sampled_from([leaf for leaf in LEAVES if leaf[0][0] == "train"]))
        raw["variants"] = {"v": {"train": {path[1]: draw(bad_value(tp, meta))}}}
    return raw


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def never_called(cfg, args):
    raise AssertionError("the stage ran on invalid params")


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=bad_params())
def test_bad_params_one_line_exit_2_nothing_written(workdir, capsys, raw):
    params = workdir / "params.yaml"
    params.write_text(yaml.safe_dump(raw, allow_unicode=True))
    before = sorted(workdir.rglob("*"))
    code = run_stage("train", never_called, "fuzz", argv=["--params", str(params)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, (raw, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error: "), err
    assert sorted(workdir.rglob("*")) == before


def test_the_fuzzer_reaches_every_leaf():
    assert len(LEAVES) > 60
    assert {("train", "lr"), ("data", "dataset"), ("study", "seeds")} <= {p for p, _, _ in LEAVES}


def test_unparsable_yaml_is_one_line(workdir, capsys):
    params = workdir / "params.yaml"
    params.write_text("train:\n  lr: [1.0e-3\n  epochs: 2\n")
    assert run_stage("train", never_called, "fuzz", argv=["--params", str(params)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("script,args,edit", [
    ("train.py", ["--variant", "../baseline"], {}),
    ("evaluate.py", ["--variant", "a/b"], {}),
    ("download.py", [], {"data": {**TINY["data"], "dataset": "../../etc"}}),
    ("prepare.py", [], {"variants": {"../x": {}}}),
    ("pretrain_ae.py", ["--domain", "A"], {"train": {**TINY["train"], "lr": "1e-3"}}),
])
def test_real_stage_scripts(tmp_path, script, args, edit):
    """The stage scripts themselves, as DVC runs them: exit 2, one line, nothing written."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**copy.deepcopy(TINY), **edit}))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, str(REPO / "pipeline" / script), *args, "--params",
                           str(params)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert list(work.iterdir()) == []
