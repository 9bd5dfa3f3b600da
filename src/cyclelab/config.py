"""``params.yaml``: read, validate, and the views of it the stages use.

Only this module reads the params file. Every stage calls :func:`load` first, so an unknown
key, a wrong type or an out-of-range value stops the stage before any work is done, with one
line naming the key, the value and what is allowed (:class:`ConfigError`).

The schema is in :mod:`cyclelab.config_schema` (pydantic dataclasses), the one-line errors in
:mod:`cyclelab.config_errors`, the rules across keys in :mod:`cyclelab.config_rules`; this module
re-exports their public names, so callers import ``cyclelab.config`` only. Here: loading,
:func:`to_dict` / :func:`flatten` / :func:`fingerprint`, and the params reference generated
from the schema (:func:`params`, ``docs/params.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo

from cyclelab.config_errors import validate
from cyclelab.config_rules import check, training_size
from cyclelab.config_schema import (
    ACTIVATIONS,
    AE_KINDS,
    D_PADDINGS,
    DIFFAUGMENTS,
    DISCRIMINATORS,
    GAN_LOSSES,
    GENERATORS,
    INITS,
    LR_POLICIES,
    METRIC_NAMES,
    NORMS,
    OPTIMIZERS,
    POOLS,
    PRECISIONS,
    RESTARTS,
    RESUMES,
    UPSAMPLES,
    AEConfig,
    ClassifierConfig,
    Config,
    DataConfig,
    DigitsConfig,
    EvalConfig,
    ModelConfig,
    SpritesConfig,
    StudyConfig,
    TrainConfig,
    VariantConfig,
    entry_of,
    overrides_of,
)
from cyclelab.errors import ConfigError

PARAMS_FILE = "params.yaml"


def from_dict(raw: Any) -> Config:
    """Validate ``raw`` (parsed YAML) and return the typed :class:`Config`."""
    cfg = validate(raw)
    check(cfg)
    return cfg


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML params file; :class:`ConfigError` naming the file (and line) if it can't."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found (run from the repository root)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from None
    return raw


def load(path: str | Path = PARAMS_FILE) -> Config:
    """Read and validate a params file; raise :class:`ConfigError` with one clear line."""
    raw = read_yaml(path)
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """A plain-data copy of a config object (for logging and hashing)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train.lr": 2e-4, ...}`` from a nested config (MLflow params)."""
    data = to_dict(obj)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


# Keys added to a section after checkpoints were made, with the behaviour those checkpoints had.
ADDED_LATER = {"restart_optimizers": "fresh", "halve_d_loss": True, "input_skip": False}


def without_added_later(section: Any) -> dict[str, Any]:
    """``section`` as plain data for a fingerprint, less the keys of :data:`ADDED_LATER` at
    their old behaviour: checkpoints made before such a key existed still resume."""
    return {k: v for k, v in to_dict(section).items()
            if k not in ADDED_LATER or v != ADDED_LATER[k]}


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config parts: checkpoints resume only when it matches."""
    blob = json.dumps([to_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Param(typing.NamedTuple):
    """One leaf key of the schema, as :func:`params` yields it."""

    key: str                 # dotted, ``<name>`` for the names of a mapping section
    type: str                # "int", "float", "str", "bool", "list[int]", "mapping", ...
    default: Any             # plain data (``to_dict``); ``dataclasses.MISSING`` when none
    choices: tuple           # allowed values, () = any
    bounds: tuple            # (("ge", 1), ("le", 64), ("item_choices", (...)), ...)
    doc: str


_BOUNDS = ("length", "ge", "gt", "le", "lt", "item_choices", "item_ge", "item_gt", "item_le",
           "item_lt")
_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length")


def _constraints(metadata: typing.Iterable) -> dict[str, Any]:
    """``{"ge": 1, "le": 64}`` from pydantic's metadata of a field or a list item."""
    out = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            out.update(_constraints(item.metadata))
        out.update({name: getattr(item, name) for name in _CONSTRAINTS if hasattr(item, name)})
    return out


def _leaf(annotation: Any, metadata: list) -> tuple[str, tuple, dict[str, Any]]:
    """The type name, choices and bounds (as :class:`Param` spells them) of a leaf field."""
    bounds = _constraints(metadata)
    if bounds.get("min_length") is not None and bounds["min_length"] == bounds.get("max_length"):
        bounds["length"] = bounds["min_length"]
    if typing.get_origin(annotation) is typing.Literal:
        return "str", typing.get_args(annotation), bounds
    if typing.get_origin(annotation) is list:
        item, item_meta = typing.get_args(annotation)[0], ()
        if typing.get_origin(item) is typing.Annotated:
            item, item_meta = item.__origin__, item.__metadata__
        if typing.get_origin(item) is typing.Literal:
            return "list[str]", (), {**bounds, "item_choices": typing.get_args(item)}
        items = {f"item_{k}": v for k, v in _constraints(item_meta).items()}
        return f"list[{item.__name__}]", (), {**bounds, **items}
    return annotation.__name__, (), bounds


def params(cls: type | None = None, prefix: str = "") -> typing.Iterator[Param]:
    """Every leaf key of the schema in file order, with its type, default and constraints, as
    pydantic reads them from the schema.

    A mapping section (``variants``, ``finetunes``) yields itself, then the keys of one entry
    under ``<name>``; an override mapping (``variants.<name>.train``) is one leaf."""
    cls = Config if cls is None else cls
    for f in dataclasses.fields(cls):
        key, info = f"{prefix}{f.name}", cls.__pydantic_fields__[f.name]
        if dataclasses.is_dataclass(info.annotation):
            yield from params(info.annotation, key + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        doc = info.description or ""
        entry = entry_of(cls, f.name)
        if entry is not None or overrides_of(cls, f.name) is not None:
            type_name, choices, bounds = "mapping", (), {}
            if entry is None:  # overrides of another section, named like it
                doc = doc or f"overrides of any {f.name}.* key"
        else:
            type_name, choices, bounds = _leaf(info.annotation, info.metadata)
        yield Param(key, type_name, to_dict(default), choices,
                    tuple((name, bounds[name]) for name in _BOUNDS if name in bounds), doc)
        if entry is not None:
            yield from params(entry, key + ".<name>.")


def describe() -> str:
    """The schema as text (``--help`` of the stages)."""
    lines = []
    for p in params():
        extra = f" ({' | '.join(p.choices)})" if p.choices else ""
        lines.append(f"  {p.key} = {p.default!r}{extra}{'  # ' + p.doc if p.doc else ''}")
    return "\n".join(lines)


def _yaml(value: Any) -> str:
    """``value`` as one would write it in params.yaml (floats that PyYAML reads as floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{int(exponent)}"
        return text
    if isinstance(value, str):
        return value if value else "''"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _allowed(p: Param) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = [" \\| ".join(f"`{c}`" for c in p.choices)] if p.choices else []
    items = []
    for name, value in p.bounds:
        if name == "length":
            parts.append(f"{value} items")
        elif name == "item_choices":
            items.append(" \\| ".join(f"`{c}`" for c in value))
        elif name.startswith("item_"):
            items.append(f"{signs[name[5:]]} {value}")
        else:
            parts.append(f"{signs[name]} {value}")
    if items:
        parts.append("each " + ", ".join(items))
    return "; ".join(parts)


def reference_markdown() -> str:
    """``docs/params.md``: one table per section of every key, from :func:`params`."""
    hints = typing.get_type_hints(Config)
    rows: dict[str, list[str]] = {}
    for p in params():
        top = p.key.split(".")[0]
        section = (top if dataclasses.is_dataclass(hints[top]) else
                   "variants" if top in ("variants", "finetunes") else "")
        doc = p.doc.replace("``", "`").replace("|", "\\|").replace("<", "&lt;")
        cells = (f"`{p.key}`", p.type, f"`{_yaml(p.default)}`", _allowed(p), doc)
        rows.setdefault(section, []).append("| " + " | ".join(cells) + " |")
    out = ["# Params reference", "",
           "Generated from the schema in `src/cyclelab/config_schema.py` by",
           "`python -m cyclelab.config --markdown > docs/params.md`; do not edit by hand",
           "(`tests/test_config.py` fails when this file is not current). Every stage validates",
           "the whole `params.yaml` against it before doing anything. Write floats as `2.0e-4`:",
           "PyYAML reads `2e-4` as a string.", ""]
    titles = {"": "Top level", "variants": "variants and finetunes"}
    for section, lines in rows.items():
        doc = (VariantConfig if section == "variants" else hints.get(section, Config)).__doc__
        out += [f"## {titles.get(section, section)}", "",
                " ".join(doc.split()).replace("``", "`"), "",
                "| key | type | default | allowed | what it does |", "|---|---|---|---|---|",
                *lines, ""]
    return "\n".join(out)


__all__ = [
    "PARAMS_FILE", "Config", "ConfigError", "Param", "load", "read_yaml", "from_dict", "to_dict",
    "flatten", "fingerprint", "describe", "params", "reference_markdown", "training_size",
    # the schema's sections and the names its choices draw from (registries check them)
    "DigitsConfig", "SpritesConfig", "DataConfig", "ModelConfig", "AEConfig", "TrainConfig",
    "EvalConfig", "ClassifierConfig", "StudyConfig", "VariantConfig",
    "GENERATORS", "DISCRIMINATORS",
    "ACTIVATIONS", "D_PADDINGS", "OPTIMIZERS", "AE_KINDS", "GAN_LOSSES", "POOLS", "PRECISIONS",
    "LR_POLICIES", "NORMS", "UPSAMPLES", "DIFFAUGMENTS", "RESUMES", "RESTARTS",
    "INITS", "METRIC_NAMES",
]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m cyclelab.config --markdown > docs/params.md")
    print(reference_markdown(), end="")
