"""The package's layering: no import cycle between its parts (subpackages and top-level
modules), function-level imports included; so a module can be read bottom-up."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src" / "cyclelab"


def part(path: Path) -> str:
    """``metrics`` for src/cyclelab/metrics/fid.py, ``config`` for src/cyclelab/config.py."""
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def import_graph() -> dict[str, dict[str, str]]:
    """part -> {imported part: a file that imports it}, every import statement anywhere."""
    graph: dict[str, dict[str, str]] = {}
    for file in sorted(SRC.rglob("*.py")):
        here = part(file)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "cyclelab":
                    names = [f"cyclelab.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "cyclelab" and len(parts) > 1 and parts[1] != here:
                    graph.setdefault(here, {}).setdefault(parts[1], str(file.relative_to(REPO)))
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str]:
    """One cycle of ``graph`` as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_no_import_cycle_between_the_parts_of_the_package():
    graph = import_graph()
    cycle = find_cycle(graph)
    where = [f"{a} -> {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    assert not cycle, "import cycle: " + "; ".join(where)


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": "", "c": ""}, "b": {"c": ""}}) == []


def test_runtime_is_a_bottom_layer_module():
    """Device and precision (Runtime) are read by metrics, models' users and training alike."""
    assert (SRC / "runtime.py").is_file()
    assert set(import_graph().get("runtime", {})) <= {"errors"}


def test_metric_registry_is_a_bottom_layer_module():
    """The config schema lists the registry's names, and the metrics import the config."""
    assert set(import_graph().get("metric_registry", {})) <= {"errors"}


STAGE_MAX_LINES = 80


def test_stage_scripts_are_glue():
    """A stage parses, loads the config, calls the library and writes: at most about 80 lines,
    no function defined inside another (no closure, no lambda)."""
    for script in sorted((REPO / "pipeline").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        assert lines <= STAGE_MAX_LINES, f"{script.name}: {lines} lines; move logic to src/"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = [n for n in ast.walk(node) if n is not node and isinstance(
                    n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
                assert not inner, f"{script.name}: a closure in {getattr(node, 'name', 'lambda')}"
            assert not isinstance(node, ast.Lambda), f"{script.name}: a lambda"


def test_directions_are_spelled_only_in_directions_py():
    """Every spelling of a direction (result key, label, CLI name) comes from
    cyclelab/directions.py; a string literal of one anywhere else in the package or the stage
    scripts fails (docstrings and f-strings that derive from it are not literals of it)."""
    spellings = {"A_to_B", "B_to_A", "AtoB", "BtoA", "A→B", "B→A"}
    found = []
    for file in sorted([*SRC.rglob("*.py"), *(REPO / "pipeline").glob("*.py")]):
        if file.name == "directions.py":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in spellings:
                found.append(f"{file.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert found == []


def string_literals(file: Path) -> list[ast.Constant]:
    """The string constants of ``file`` that are not docstrings (f-string parts included)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) \
                and node.body and isinstance(node.body[0], ast.Expr):
            docstrings.add(id(node.body[0].value))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_file_names_are_spelled_only_in_paths_py():
    """The names of the files stages hand on (labels, manifest, prepare's summary) come from
    cyclelab/paths.py; a string that names one anywhere else in the package or the stage
    scripts fails (docstrings may name them)."""
    names = re.compile(r"\b(labels\.csv|manifest\.csv|summary\.json)\b")
    found = [f"{file.relative_to(REPO)}:{node.lineno} {node.value!r}"
             for file in sorted([*SRC.rglob("*.py"), *(REPO / "pipeline").glob("*.py")])
             if file.name != "paths.py"
             for node in string_literals(file) if names.search(node.value)]
    assert found == []


def test_dataset_facts_are_spelled_only_in_the_catalogue():
    """Which test images pair up (their per-domain suffixes) is a field of the catalogue
    entry; the scores and the builders read it from there."""
    suffixes = {"_A", "_B", "_leftImg8bit", "_gtFine_color"}
    found = [f"{file.relative_to(REPO)}:{node.lineno} {node.value!r}"
             for file in sorted(SRC.rglob("*.py")) if file.name != "catalogue.py"
             for node in string_literals(file) if node.value in suffixes]
    assert found == []
