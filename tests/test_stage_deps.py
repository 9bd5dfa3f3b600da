"""Correct invalidation: every `cyclelab` module a stage script imports (directly or through
other modules, at top level or inside functions) is covered by that stage's `deps` in
dvc.yaml, so editing it reruns the stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` (a package's ``__init__.py``), or None if not ours."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """``cyclelab`` modules imported anywhere in ``path`` (``from pkg import mod`` included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "cyclelab"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "cyclelab":
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names
                      if module_file(f"{node.module}.{a.name}")}
    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
    parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    return {n for n in names | parents if module_file(n)}


def closure(script: Path) -> set[Path]:
    """Every ``cyclelab`` source file ``script`` runs, transitively."""
    seen: set[Path] = set()
    todo = [module_file(n) for n in imported_modules(script)]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        todo += [module_file(n) for n in imported_modules(file)]
    return seen


def stages() -> dict[str, dict]:
    """Stage name -> its definition (the ``do`` body of foreach stages)."""
    raw = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_cover_every_module_it_imports(name):
    stage = stages()[name]
    script = REPO / stage["cmd"].split()[1]
    assert script.is_file(), stage["cmd"]
    deps = [REPO / (d if isinstance(d, str) else next(iter(d))) for d in stage["deps"]]
    assert script in deps, f"{name}: {script.name} is not in its own deps"
    missing = sorted(str(f.relative_to(REPO)) for f in closure(script)
                     if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"{name}: add to its deps in dvc.yaml: {missing}"


def test_the_walk_finds_nested_and_function_level_imports():
    files = {f.relative_to(SRC).as_posix() for f in closure(REPO / "pipeline/evaluate.py")}
    assert {"cyclelab/stage.py", "cyclelab/config.py", "cyclelab/metrics/__init__.py",
            "cyclelab/metrics/uncertainty.py", "cyclelab/tracking.py"} <= files


def config_sections(script: Path) -> set[str]:
    """Top-level params sections a stage script reads (``cfg.<section>``)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "cfg"}
    aliases = {"variant": {"variants"}, "runs": {"variants", "finetunes"}}
    return set().union(*(aliases.get(name, {name}) for name in names))


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_params_cover_every_section_it_reads(name):
    stage = stages()[name]
    declared = [p if isinstance(p, str) else next(iter(p)) for p in stage.get("params", [])]
    # cfg.variant(name) reads variants: or finetunes: (a finetune stage declares its own).
    covers = {"variants": ("variants", "finetunes")}
    missing = sorted(section for section in config_sections(REPO / stage["cmd"].split()[1])
                     if not any(p == s or p.startswith(f"{s}.") for p in declared
                                for s in covers.get(section, (section,))))
    assert not missing, f"{name}: add to its params in dvc.yaml: {missing}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_declared_param_is_in_params_yaml(name):
    """DVC refuses to run a stage whose declared param is missing from params.yaml."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for entry in stages()[name].get("params", []):
        key = entry if isinstance(entry, str) else next(iter(entry))
        if "${" in key:
            continue
        node = params
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{name}: {key} not in params.yaml"
            node = node[part]
