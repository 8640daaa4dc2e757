"""Plain YAML data checked into frozen dataclasses, key by key, with one-line errors.

`parse(cls, raw, where)` builds dataclass `cls` from the dicts, lists and scalars a YAML
reader gives: every key must be a field (a close match is suggested), every value of its
type hint, within its `Range`, non-empty where `NonEmpty` says so, and a dataclass's
`validate()` may check across keys. A failure is a ParamsError naming the file (`where`),
the dotted key and what was expected, with the value shown shortened (never serialised
whole). `llmops.config.params` declares params.yaml's sections with it; standard library and
`llmops.config.paramsfile` only.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from llmops.config.paramsfile import ParamsError


@dataclass(frozen=True)
class Range:
    """Allowed interval for a number; open ends exclude the bound."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        above = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        below = self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)
        return above and below

    def describe(self) -> str:
        lo, hi = (f"{b:g}" if isinstance(b, float) else str(b) for b in (self.lo, self.hi))
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {lo}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {hi}"
        left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"in {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class NonEmpty:
    """A list or string that must not be empty (lists: nor hold duplicates)."""


def parse(cls: type, raw: Any, where: str, key: str = "") -> Any:
    """Build dataclass `cls` from plain YAML data, checking every field."""
    if not isinstance(raw, dict):
        raise _error(where, key, "a mapping of keys", raw)
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for unknown in sorted(set(raw) - set(names), key=str):
        close = difflib.get_close_matches(str(unknown), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        expected = f"one of the known keys: {', '.join(names)}{hint}"
        raise ParamsError(f"{where}: {_join(key, unknown)}: unknown key; expected {expected}")
    values = {}
    for field in dataclasses.fields(cls):
        sub = _join(key, field.name)
        if field.name in raw:
            values[field.name] = _convert(hints[field.name], raw[field.name], where, sub)
        elif field.default is dataclasses.MISSING:
            raise ParamsError(f"{where}: {sub}: missing; expected {_describe(hints[field.name])}")
    out = cls(**values)
    try:
        if hasattr(out, "validate"):  # checks across keys, e.g. a label field needs values
            out.validate()
    except ValueError as err:
        raise ParamsError(f"{where}: {key + ': ' if key else ''}{err}") from None
    return out


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    base, checks = _unwrap(hint)
    origin = typing.get_origin(base)
    if dataclasses.is_dataclass(base):
        return parse(base, value, where, key)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(base)
        if value is None and type(None) in options:
            return None
        inner = next(a for a in options if a is not type(None))
        return _convert(inner, value, where, key)
    if origin is Literal:
        if value not in typing.get_args(base):
            raise _error(where, key, _describe(hint), value)
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise _error(where, key, _describe(hint), value)
        key_type, value_type = typing.get_args(base)
        out = {
            _convert(key_type, k, where, f"{key} key"): _convert(
                value_type, v, where, _join(key, k)
            )
            for k, v in value.items()
        }
        _check(checks, out, hint, where, key, value)
        return out
    if origin is tuple:
        if not isinstance(value, list):
            raise _error(where, key, _describe(hint), value)
        item = typing.get_args(base)[0]
        out = tuple(_convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value))
        _check(checks, out, hint, where, key, value)
        return out
    if not _is_type(base, value):
        raise _error(where, key, _describe(hint), value)
    out = _float(value) if base is float else value
    if base is float and not math.isfinite(out):  # .nan, .inf: no knob or gate means that
        raise _error(where, key, "a finite " + _describe(hint).removeprefix("a "), value)
    _check(checks, out, hint, where, key, value)
    return out


def _check(checks: list, value: Any, hint: Any, where: str, key: str, raw: Any) -> None:
    for check in checks:
        if isinstance(check, Range) and not check.contains(value):
            raise _error(where, key, _describe(hint), raw)
        duplicates = isinstance(value, tuple) and len(set(value)) != len(value)  # dict: never
        if isinstance(check, NonEmpty) and (len(value) == 0 or duplicates):
            raise _error(where, key, _describe(hint), raw)


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        return math.inf


def _is_type(base: type, value: Any) -> bool:
    if base is float:  # YAML writes 1 for 1.0; bool is an int subclass and never a number here
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _unwrap(hint: Any) -> tuple[Any, list]:
    if typing.get_origin(hint) is Annotated:
        base, *checks = typing.get_args(hint)
        return base, checks
    return hint, []


def _describe(hint: Any) -> str:
    base, checks = _unwrap(hint)
    origin = typing.get_origin(base)
    if dataclasses.is_dataclass(base):
        return "a mapping of keys"
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(base))
    if origin in (types.UnionType, typing.Union):
        inner = next(a for a in typing.get_args(base) if a is not type(None))
        return f"{_describe(inner)} or null"
    if origin is dict:
        key_type, value_type = typing.get_args(base)
        text = f"a mapping from {_describe(key_type)} to {_describe(value_type)}"
    elif origin is tuple:
        item = _describe(typing.get_args(base)[0])
        if item.startswith("one of "):
            text = "a list of values from: " + item.removeprefix("one of ")
        else:
            text = f"a list of {item.removeprefix('a ')}s"
    else:
        text = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}[base]
    for check in checks:
        if isinstance(check, Range):
            text += " " + check.describe()
        elif isinstance(check, NonEmpty):
            text = "a non-empty " + text.removeprefix("a ").removeprefix("an ")
            text += ", without duplicates" if origin is tuple else ""
    return text


def _error(where: str, key: str, expected: str, got: Any) -> ParamsError:
    return ParamsError(f"{where}: {key or '(top level)'}: expected {expected}, got {_show(got)}")


def _show(value: Any, limit: int = 200) -> str:
    """`value` as JSON, cut after `limit` characters. Written piece by piece and stopped
    there, so a value that repeats one list a billion times (through aliases) or holds
    itself costs what the limit does."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[str(value)]  # as YAML writes them
    text = ""
    for piece in _json_pieces(value, limit):
        text += piece
        if len(text) > limit:
            return text[:limit] + "…"
    return text


def _json_pieces(value: Any, limit: int) -> Iterator[str]:
    """The text json.dumps(value, ensure_ascii=False, default=str) writes, in pieces, walked
    depth-first by an explicit stack (no recursion); strings cut after `limit` characters."""
    stack: list[Iterator[tuple[str, Any]]] = [iter([("", value)])]
    ends = [""]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            yield ends.pop()
            continue
        prefix, item = step
        yield prefix
        if isinstance(item, dict):
            keys = (k if isinstance(k, str) else _json_scalar(k, limit) for k in item)
            pairs = zip(keys, item.values(), strict=True)
            stack.append(
                (", " * (i > 0) + _json_scalar(k, limit) + ": ", v)
                for i, (k, v) in enumerate(pairs)
            )
            ends.append("}")
            yield "{"
        elif isinstance(item, list | tuple):
            stack.append((", " * (i > 0), v) for i, v in enumerate(item))
            ends.append("]")
            yield "["
        else:
            yield _json_scalar(item, limit)


def _json_scalar(value: Any, limit: int) -> str:
    if value is None or isinstance(value, bool | float):
        return json.dumps(value)
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # past Python's 4300 digits
            return '"an integer too long to show"'
    text = value if isinstance(value, str) else str(value)
    return json.dumps(text[: limit + 1], ensure_ascii=False)


def _join(prefix: str, name: Any) -> str:
    name = name if isinstance(name, str) and name.isprintable() else repr(name)
    return f"{prefix}.{name}" if prefix else name
