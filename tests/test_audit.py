"""Nothing executes input from params or files: no shell, no eval/exec, no pickle, every
torch.load with weights_only=True, and names validated before they become paths.

The code checks read the syntax tree of every file in src/ and pipeline/, so a comment or a
docstring that mentions ``eval(`` does not count and ``net.eval()`` is not ``eval()``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cyclelab import config
from cyclelab.catalogue import CATALOGUE, lookup
from cyclelab.errors import ConfigError
from tests.conftest import REPO

SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "pipeline").rglob("*.py")])


def calls(path: Path) -> list[tuple[str, ast.Call]]:
    """Every call in ``path`` with its dotted name (``torch.load``, ``subprocess.run``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_the_audit_sees_the_code():
    assert len(SOURCES) > 30
    names = {name for path in SOURCES for name, _ in calls(path)}
    assert "torch.load" in names and "subprocess.run" in names


def test_no_shell_no_eval_no_exec():
    bad = []
    for path in SOURCES:
        for name, node in calls(path):
            if name in ("eval", "exec", "compile", "__import__", "os.system", "os.popen"):
                bad.append(f"{where(path, node)} {name}()")
            shell = keyword(node, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
                bad.append(f"{where(path, node)} {name}(shell=...)")
    assert not bad, bad


def test_no_unsafe_deserialisation():
    """pickle, yaml.load and np.load(allow_pickle=True) run code hidden in a file."""
    bad = []
    for path in SOURCES:
        for name, node in calls(path):
            if name.split(".")[0] in ("pickle", "marshal", "shelve", "dill") and \
                    name.endswith(("load", "loads", "open", "Unpickler")):
                bad.append(f"{where(path, node)} {name}()")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                bad.append(f"{where(path, node)} {name}() (use yaml.safe_load)")
            pickle_flag = keyword(node, "allow_pickle")
            if name.endswith("load") and pickle_flag is not None and not (
                    isinstance(pickle_flag, ast.Constant) and pickle_flag.value is False):
                bad.append(f"{where(path, node)} {name}(allow_pickle=...)")
    assert not bad, bad


@pytest.mark.parametrize("path", [p for p in SOURCES if "torch.load" in p.read_text()],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_torch_load_is_weights_only(path: Path):
    bad = []
    for name, node in calls(path):
        if name == "torch.load":
            flag = keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                bad.append(f"{where(path, node)} torch.load without weights_only=True")
    assert not bad, bad


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".", "..", "-x", "x y", "a\\b", "é",
                                  "a\nb", "/abs", "x" * 65])
def test_variant_names_that_are_not_plain_names_are_refused(tiny_raw, name):
    tiny_raw["variants"] = {name: {}}
    with pytest.raises(ConfigError, match="names start with a letter or digit"):
        config.from_dict(tiny_raw)


@pytest.mark.parametrize("name", ["./digits", "digits/", "digits/.", "digits/../digits",
                                  "/digits", "../x", "a/b", "", "digits/../../etc", "mine"])
def test_dataset_names_are_looked_up_never_joined(tmp_path, monkeypatch, name):
    """Only a catalogue key is a dataset: paths that name a catalogue entry once normalised, and
    a folder that exists where the stage runs, are refused (joining or normalising would find
    them), while every key finds its own entry."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "trainA").mkdir(parents=True)
    with pytest.raises(ConfigError, match="unknown dataset"):
        lookup(name)
    assert all(lookup(key) is entry for key, entry in CATALOGUE.items())


def test_variant_argument_must_name_a_variant(tiny_params):
    with pytest.raises(ConfigError, match="no such variant"):
        tiny_params.variant("../baseline")
