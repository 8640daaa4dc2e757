"""Reading params YAML: bytes to text to plain data, as every reader of params.yaml does.

`read_text` decodes a file as UTF-8 (a UTF-8 byte-order mark is dropped; UTF-16, UTF-32 or
bytes that are not UTF-8 are a one-line ParamsError naming the file, the line and the
column), `read_yaml` parses it with PyYAML's safe loader adjusted to what people write and
what DVC (a YAML 1.2 reader) sees in the same file: numbers such as `3e-4` and `1e5` are
floats, a `<<: *anchor` merge may be overridden by the mapping's own keys, and two equal
keys are an error instead of the last one silently winning. `llmops.params` builds the
typed config on top; `llmops.markdown` (the params diff) and `llmops.profile` read with it
too. Standard library and PyYAML only.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml


class ParamsError(ValueError):
    """A params file that does not match the typed config; the message names file and key."""


MERGE = "tag:yaml.org,2002:merge"
# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings because they have no dot or no
# exponent sign: 3e-4, 1e5, -2E+3, -.5. DVC reads params.yaml as YAML 1.2, so it agrees.
FLOAT_12 = re.compile(
    r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$"
)


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does, refusing two equal keys
    (PyYAML keeps the last) and applying `<<` merges as the merge-key spec says (the
    mapping's own keys win, then earlier merged mappings over later ones)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._merging: set[yaml.Node] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        own, sources = [], []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE:
                if key_node.tag == "tag:yaml.org,2002:value":  # `=` is a plain key here
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
            elif sources:
                raise self._error(key_node, "duplicate merge key '<<'; merge several "
                                  "mappings with one `<<: [*a, *b]`")  # fmt: skip
            else:
                many = isinstance(value_node, yaml.SequenceNode)
                sources = value_node.value if many else [value_node]
                if not all(isinstance(s, yaml.MappingNode) for s in sources):
                    raise self._error(value_node, "`<<` merges a mapping or a list of them")
        keys = self._unique_keys(own)
        merged: dict = {}
        for source in sources:
            if source in self._merging:
                raise self._error(source, "a mapping merges itself")
            self._merging.add(source)
            self.flatten_mapping(source)
            self._merging.discard(source)
            for key_node, value_node in source.value:
                merged.setdefault(self.construct_object(key_node), (key_node, value_node))
        node.value = [pair for key, pair in merged.items() if key not in keys] + own

    def _unique_keys(self, pairs: list) -> set:
        seen = set()
        for key_node, _ in pairs:
            key = self.construct_object(key_node, deep=True)
            plain = isinstance(key, str | int | float | bool)
            if not plain or key in seen:
                problem = "duplicate key" if plain else "a key must be a plain value, got"
                raise self._error(key_node, f"{problem} {key!r:.80}")
            seen.add(key)
        return seen

    @staticmethod
    def _error(node: yaml.Node, problem: str) -> yaml.YAMLError:
        return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


# PyYAML copies the resolver table into the subclass on its first change, so yaml.safe_load
# elsewhere keeps YAML 1.1.
_ParamsLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))


def read_text(path: Path | str) -> str:
    """A params file's text; ParamsError naming the file when it cannot be read as UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a directory, expected a YAML file") from None
    except OSError as err:
        raise ParamsError(f"{path}: cannot be read ({err.strerror or err})") from None
    return decode(data, str(path))


def decode(data: bytes, where: str) -> str:
    """UTF-8 text (a UTF-8 BOM is dropped); ParamsError naming `where` and the encoding
    it has instead."""
    data = data.removeprefix(codecs.BOM_UTF8)
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ParamsError(f"{where}: is UTF-32; save it as UTF-8")
    head = data[:200]  # UTF-16 without a BOM: ASCII text has a NUL in every other byte
    half_nul = max(head[::2].count(0), head[1::2].count(0)) * 4 > len(head)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or half_nul:
        raise ParamsError(f"{where}: is UTF-16; save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        column = len(data[start : err.start].decode("utf-8", "replace")) + 1
        raise ParamsError(
            f"{where}: not UTF-8 (byte 0x{data[err.start]:02x} at line {line}, column "
            f"{column}); save the file as UTF-8"
        ) from None


def read_yaml(text: str, where: str) -> Any:
    """Plain data from params YAML text, read as `load_params` reads it (YAML 1.2 numbers,
    merges, no duplicate keys); ParamsError naming `where` when it is not valid YAML."""
    try:
        return yaml.load(text, Loader=_ParamsLoader)
    except yaml.YAMLError as err:
        raise ParamsError(f"{where}: not valid YAML: {_problem(err, text)}") from None
    except RecursionError:
        raise ParamsError(f"{where}: not valid YAML: nested too deeply") from None
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        # A tagged or implicit value PyYAML cannot build: 2024-13-01, a 5000-digit integer.
        problem = _one_line(f"{type(err).__name__}: {err}")
        raise ParamsError(f"{where}: not valid YAML: cannot read a value ({problem})") from None


def _problem(err: yaml.YAMLError, text: str) -> str:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        what = " ".join(filter(None, [err.problem or "", err.context or ""]))
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return _one_line(what + at)
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        column = err.position - text.rfind("\n", 0, err.position)
        return f"character #x{err.character:04x} is not allowed (line {line}, column {column})"
    return _one_line(str(err))


def _one_line(text: str) -> str:
    return " ".join(text.split())
