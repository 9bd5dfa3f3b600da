"""Validation of a parsed params file against the schema, with pydantic, and its first error
as the one line a user can act on: the key, the value, what is allowed, "did you mean"."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cyclelab.config_schema import Config, entry_of, overrides_of
from cyclelab.errors import ConfigError

_EXPECTED = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping of keys",
             "dataclass_type": "a mapping of keys", "finite_number": "a finite number"}
_SIGNS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"),
          "less_than_equal": ("le", "<="), "less_than": ("lt", "<")}
_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden", "invalid_key")  # not a str


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(Config)


def validate(raw: Any) -> Config:
    """``raw`` (parsed YAML; None = an empty file) as a :class:`Config`, or :class:`ConfigError`
    with one line for the first mistake (an unknown key before a bad value)."""
    try:
        return _adapter().validate_python({} if raw is None else raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] not in _UNKNOWN)
        raise ConfigError(_one_line(errors[0])) from None


def _section_at(path: tuple) -> type | None:
    """The section whose keys are at ``path`` (``("variants", "v", "train")``: TrainConfig)."""
    section, parts = Config, list(path)
    while parts:
        name = parts.pop(0)
        if name not in section.__pydantic_fields__:
            return None
        annotation = section.__pydantic_fields__[name].annotation
        entry, overrides = entry_of(section, name), overrides_of(section, name)
        if dataclasses.is_dataclass(annotation):
            section = annotation
        elif overrides is not None:
            section = overrides
        elif entry is not None and parts:
            section, _ = entry, parts.pop(0)  # past the entry's name
        else:
            return None
    return section


def _one_line(error: dict) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    if loc[-1:] == ("[key]",):  # a variant's name
        return (f"{'.'.join(map(str, loc[:-2]))}: got the name {loc[-2]!r}; names start with a "
                "letter or digit and use ASCII letters, digits, '_' and '-' only")
    if kind in _UNKNOWN:
        key, section = ".".join(map(str, loc)), _section_at(loc[:-1])
        allowed = [f.name for f in dataclasses.fields(section)] if section else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{key}: unknown key; {hint}allowed here: {', '.join(allowed)}"
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    key = key or "params.yaml"
    section = _section_at(loc[:-1]) if loc else None
    if kind in ("dict_type", "too_short") and section and entry_of(section, loc[-1]):
        return f"{key}: got {value!r}, expected a mapping of one or more names"
    if kind in _EXPECTED:
        tip = (" (PyYAML reads 1e-3 as a string: write 1.0e-3)"
               if kind == "float_type" and isinstance(value, str) else "")
        return f"{key}: got {value!r}, expected {_EXPECTED[kind]}{tip}"
    if kind == "literal_error" and not isinstance(value, str):  # every choice is a string
        return f"{key}: got {value!r}, expected a string"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        return f"{key}: got {value!r}, allowed: {', '.join(allowed)}"
    if kind in _SIGNS:
        name, sign = _SIGNS[kind]
        return f"{key}: got {value!r}, must be {sign} {error['ctx'][name]}"
    if kind in ("too_short", "too_long") and isinstance(value, list):
        length = error["ctx"].get("min_length", error["ctx"].get("max_length"))
        return f"{key}: got {value!r}, expected a list of {length} numbers"
    return f"{key}: got {value!r}, {error['msg'][:1].lower()}{error['msg'][1:]}"
