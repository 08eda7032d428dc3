"""Declared settings: one `key()` per configuration key, read from TOML and written as the example, from one place.

As sqlite-utils derives a table from a dict, the configuration is derived from dataclasses: each field's type
annotation, default and `key()` metadata (range, choices, fix, comment, a check) say everything about the key.
Reading collects every problem at once (a technician fixes a file in one pass); the example configuration is
written from the same declarations, so its values can never drift from the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED: Any = dataclasses.MISSING  # no default: the key must be given (and a check may answer it to refuse)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str = ""
    severity: str = "error"  # "error" stops the device; "warning" is reported and tolerated

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} — fix: {self.fix}" if self.fix else text


def key(
    default: Any = REQUIRED,
    *,
    example: Any = None,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    fix: str = "",
    doc: str = "",
    check: Callable | None = None,
    accept: tuple[type, ...] = (),
    section: type | None = None,
    many: bool = False,
    optional: bool = False,
    name: str | None = None,
) -> Any:
    """A configuration key (or a section of keys) as a dataclass field."""
    metadata = {
        "example": example,
        "low": low,
        "high": high,
        "choices": choices,
        "fix": fix,
        "doc": doc,
        "check": check,
        "accept": accept,
        "section": section,
        "many": many,
        "optional": optional,
        "name": name,
    }
    return dataclasses.field(default=default, metadata=metadata)


class Checker:
    """Collects problems instead of stopping at the first; resolves relative paths against the file's folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, fix: str = "", severity: str = "error") -> None:
        self.problems.append(Problem(path, message, fix, severity))

    def unknown_keys(self, table: dict, path: str, known: set[str]) -> None:
        for name in sorted(set(table) - known):
            self.problem(
                f"{path}.{name}" if path else name,
                "unknown key",
                f"remove it or correct its spelling (known here: {', '.join(sorted(known))})",
            )

    def text(self, table: dict, name: str, path: str, default: Any = REQUIRED, fix: str = "") -> str | None:
        """A string from a table that is not declared (a list element's table)."""
        value = table.get(name, default)
        if value is REQUIRED:
            self.problem(f"{path}.{name}", "missing", fix)
            return None
        if not isinstance(value, str):
            self.problem(f"{path}.{name}", f"must be text, not {value!r}", fix or "write it in quotes")
            return None
        return value.strip()


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any, str]]:
    hints = typing.get_type_hints(cls)
    return [
        (f, hints[f.name], f.metadata.get("name") or f.name) for f in dataclasses.fields(cls) if "section" in f.metadata
    ]


def _types(annotation: Any) -> tuple[set[type], bool]:
    """The Python types a TOML value may have for this annotation, and whether None is allowed."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    accepted = set()
    for arg in args:
        origin = typing.get_origin(arg) or arg
        accepted |= {float: {int, float}, Path: {str}, tuple: {list}}.get(origin, {origin})
    return accepted - {type(None)}, type(None) in args


def _is_path(annotation: Any) -> bool:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return Path in args


def _value(checker: Checker, f: dataclasses.Field, annotation: Any, table: dict, name: str, full: str) -> Any:
    meta, default = f.metadata, f.default
    if name not in table:
        if default is REQUIRED:
            checker.problem(full, "missing", meta["fix"])
            return REQUIRED
        value = default
    else:
        value = table[name]
        accepted, _ = _types(annotation)
        accepted |= set(meta["accept"])
        if (isinstance(value, bool) and bool not in accepted) or not isinstance(value, tuple(accepted)):
            names = " or ".join(sorted(t.__name__ for t in accepted))
            checker.problem(full, f"must be {names}, not {value!r}", meta["fix"] or f"write a {names}")
            return REQUIRED if default is REQUIRED else default
        if isinstance(value, str):
            value = value.strip()
            if not value and meta["check"] is None:
                if default is REQUIRED:
                    checker.problem(full, "empty", meta["fix"])
                    return REQUIRED
                value = None if _types(annotation)[1] else ""
    if isinstance(value, str) and _is_path(annotation):
        value = checker.base / value
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = meta["low"], meta["high"]
        if low is not None and not low <= value <= high:
            checker.problem(full, f"{value} is out of range {low}..{high}", meta["fix"] or f"between {low} and {high}")
            return REQUIRED if default is REQUIRED else default
    if meta["choices"] and value not in meta["choices"]:
        checker.problem(full, f"{value!r} is not one of {', '.join(meta['choices'])}", "pick one of those")
        return REQUIRED
    if meta["check"] is not None and value is not None:
        value = meta["check"](checker, value, full)
    return value


def _section(checker: Checker, f: dataclasses.Field, table: dict, name: str, full: str) -> Any:
    meta, section = f.metadata, f.metadata["section"]
    raw = table.get(name)
    if meta["many"]:
        if raw is None and meta["optional"]:
            return ()  # a list of tables that may be empty (the foremen of a page that is off)
        raw = [{}] if raw is None else [raw] if isinstance(raw, dict) else raw
        if not isinstance(raw, list) or not raw:
            checker.problem(full, f"must be one [[{name}]] table or more", "see `sitegate config example`")
            return REQUIRED
        found = [_table(checker, section, item, f"{full}[{index}]") for index, item in enumerate(raw)]
        return REQUIRED if REQUIRED in found else tuple(found)
    if raw is None:
        if meta["optional"]:
            raw = {}
        elif f.default is None:
            return None
        else:
            checker.problem(full, "missing table", f"add a [{full}] section (see `sitegate config example`)")
            return REQUIRED
    return _table(checker, section, raw, full)


def _table(checker: Checker, cls: type, table: Any, path: str) -> Any:
    if not isinstance(table, dict):
        checker.problem(path, f"must be a table, not {type(table).__name__}", f"write it as [{path}]")
        return REQUIRED
    values = read_section(checker, cls, table, path)
    return REQUIRED if REQUIRED in values.values() else cls(**values)


def read_section(checker: Checker, cls: type, table: dict, path: str) -> dict[str, Any]:
    """Every declared key of `cls` from `table`, problems collected; REQUIRED marks a value that is missing."""
    declared = _fields(cls)
    checker.unknown_keys(table, path, {name for _, _, name in declared})
    values = {}
    for f, annotation, name in declared:
        full = f"{path}.{name}" if path else name
        if f.metadata["section"] is not None:
            values[f.name] = _section(checker, f, table, name, full)
        else:
            values[f.name] = _value(checker, f, annotation, table, name, full)
    if hasattr(cls, "validate"):  # what no single key can check (its values may hold REQUIRED)
        cls.validate(checker, values, path)
    return values


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def example(cls: type, path: str = "", values: Mapping[str, Any] | None = None) -> list[str]:
    """The commented example configuration of `cls`, written from its declarations.

    values: this machine's own value for some keys, by their full name ("device.data_dir"), in place of the example's
    (`make install` writes the state directory it created)."""
    values = values or {}
    lines: list[str] = []
    subsections = []
    for f, _, name in _fields(cls):
        meta = f.metadata
        full = f"{path}.{name}" if path else name
        if meta["section"] is not None:
            subsections.append((meta, full))
            continue
        if meta["doc"]:
            lines.append(f"# {meta['doc']}")
        if full in values:
            lines.append(f"{name} = {_toml(values[full])}")
            continue
        value = meta["example"] if meta["example"] is not None else f.default
        if f.default is None:  # off unless set: shown commented out, with an example value where there is one
            lines.append(f"# {name} = {_toml(value if value is not None else '')}")
        else:
            lines.append(f"{name} = {_toml(value)}")
    for meta, full in subsections:
        section = meta["section"]
        heading = f"[[{full}]]" if meta["many"] else f"[{full}]"
        lines += ["", f"# {section.DOC}", heading, *example(section, full, values)]
    return lines
