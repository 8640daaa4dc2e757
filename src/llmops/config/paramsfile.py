"""Reading params YAML: bytes to text to plain data, as every reader of params.yaml does.

`read_text` decodes a file as UTF-8 (a UTF-8 byte-order mark is dropped; UTF-16, UTF-32 or
bytes that are not UTF-8 are a one-line ParamsError naming the file, the line and the
column), `read_yaml` parses it with PyYAML's safe loader adjusted to what people write and
what DVC (ruamel.yaml, a YAML 1.2 reader) sees in the same file: booleans and numbers are
YAML 1.2's (`3e-4` and `1e5` are floats, `010` is ten and `0o10` eight, `on`, `yes`, `no`
and `off` are strings, only true and false booleans, `1:30` a string), a `<<: *anchor`
merge may be overridden by the mapping's own keys, and two equal keys are an error instead
of the last one silently winning (`yaml.safe_load` elsewhere stays YAML 1.1). Aliases are
bounded: a document holding more than MAX_VALUES values once they are expanded (an alias
bomb: a few lines of `&b [*a, *a, ...]` make billions), or an alias inside the value it
names, is refused before any value is built, naming the alias's line.
`llmops.config.params` builds the typed config on top; `llmops.report.markdown` (the params
diff) and `llmops.project.profile` read with it too. Standard library and PyYAML only.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml

from llmops.config.textcodec import bom_codec, wide_codec


class ParamsError(ValueError):
    """A params file that does not match the typed config; the message names file and key."""


MERGE = "tag:yaml.org,2002:merge"
BOOL, INT, FLOAT = (f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float"))
# YAML 1.2 booleans, floats and ints as DVC's reader (ruamel.yaml) resolves them; a little
# laxer than the 1.2 core schema, as ruamel is: `_` between digits and 0b101 are numbers.
# YAML 1.1 (PyYAML) differs: yes/no/on/off are booleans there, 010 is octal 8, 0o10 a
# string, 1:30 the sexagesimal 90, and 3e-4 or 1e5 (no dot, or no exponent sign) strings.
BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
FLOAT_12 = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
INT_12 = re.compile(r"^(?:[-+]?0b[01_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$")
# Most values (scalars, lists and mappings, keys included) a params file may hold once its
# aliases are expanded; params.yaml holds a few hundred. Readers that copy each alias's
# value (DVC's, the error messages, the typed config) would otherwise build them all.
MAX_VALUES = 100_000


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading booleans and numbers as YAML 1.2 does, refusing two
    equal keys (PyYAML keeps the last) and applying `<<` merges as the merge-key spec says
    (the mapping's own keys win, then earlier merged mappings over later ones)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases: list[tuple[str, yaml.Mark, yaml.Node]] = []  # name, where, value

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event = self.peek_event()
        node = super().compose_node(parent, index)  # the anchored node itself, not a copy
        self._aliases.append((event.anchor, event.start_mark, node))
        return node

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_aliases(node, self._aliases)
        return node

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        own, sources = [], []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE:
                if key_node.tag == "tag:yaml.org,2002:value":  # `=` is a plain key here
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
            elif sources:
                raise self._error(
                    key_node,
                    "duplicate merge key '<<'; merge several mappings with one `<<: [*a, *b]`",
                )
            else:
                many = isinstance(value_node, yaml.SequenceNode)
                sources = value_node.value if many else [value_node]
                if not all(isinstance(s, yaml.MappingNode) for s in sources):
                    raise self._error(value_node, "`<<` merges a mapping or a list of them")
        keys = self._unique_keys(own)
        merged: dict = {}
        for source in sources:  # never the mapping itself: _check_aliases refused cycles
            self.flatten_mapping(source)
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
        return _error_at(node.start_mark, problem)


def _check_aliases(root: yaml.Node, aliases: list[tuple[str, yaml.Mark, yaml.Node]]) -> None:
    """Refuse a document of more than MAX_VALUES values once aliases are expanded, or with
    an alias inside the value it names. Counted on the composed graph, where an alias is
    its anchored node: each node once (memoised), by an explicit stack, so a deep or wide
    bomb costs what its text does."""
    size: dict[yaml.Node, int] = {}  # expanded values of each finished node
    path = {root}  # the nodes the walk is inside
    stack = [(root, iter(_children(root)))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            path.discard(node)
            size[node] = 1 + sum(size[c] for c in _children(node))
            if size[node] > MAX_VALUES:
                raise _expands_too_far(node, aliases, size)
        elif child in path:
            # An alias makes every cycle (aliases name finished values or enclosing ones);
            # the one inside the value it names, if the walk came in another way.
            uses = [(n, m) for n, m, v in aliases if v is child]
            name, mark = min(uses, key=lambda use: (not _inside(use[1], child), use[1].index))
            raise _error_at(mark, f"alias *{name} is inside the value it names")
        elif child not in size:
            path.add(child)
            stack.append((child, iter(_children(child))))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _inside(mark: yaml.Mark, node: yaml.Node) -> bool:
    return node.start_mark.index <= mark.index < node.end_mark.index


def _expands_too_far(node: yaml.Node, aliases: list, size: dict) -> yaml.YAMLError:
    """The error naming the alias that repeats the most values inside `node`, the first
    value past MAX_VALUES (its other aliases and the values they name are all smaller)."""
    inside = [
        (size.get(value, 1), name, mark) for name, mark, value in aliases if _inside(mark, node)
    ]
    if not inside:  # no alias: a file this large is a mistake too
        return _error_at(node.start_mark, f"more than {MAX_VALUES:,} values")
    count, name, mark = max(inside, key=lambda found: found[0])  # the first of the largest
    expanded = f"more than {MAX_VALUES:,} values once aliases are expanded"
    return _error_at(mark, f"{expanded}; alias *{name} repeats {count:,} of them")


def _error_at(mark: yaml.Mark, problem: str) -> yaml.YAMLError:
    return yaml.constructor.ConstructorError(None, None, problem, mark)


def _resolvers_12() -> dict[str, list]:
    """SafeLoader's implicit resolvers with YAML 1.2 booleans, floats and ints in place of
    YAML 1.1's (in ruamel's order: they are tried in turn); a new table, so SafeLoader and
    yaml.safe_load elsewhere keep YAML 1.1."""
    table: dict[str, list] = {}
    for tag, regexp, first in (
        (BOOL, BOOL_12, "tTfF"),
        (FLOAT, FLOAT_12, "-+.0123456789"),
        (INT, INT_12, "-+0123456789"),
    ):
        for char in first:
            table.setdefault(char, []).append((tag, regexp))
    for char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        for tag, regexp in resolvers:
            if tag not in (BOOL, INT, FLOAT):  # null, timestamps, `<<`, `=`: as in YAML 1.2
                table.setdefault(char, []).append((tag, regexp))
    return table


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """An int as YAML 1.2 (and ruamel) reads it: 010 is ten, 0o10 eight, 0x1f 31, 0b101 5."""
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text[1:] if text.startswith(("-", "+")) else text
    base = {"0b": 2, "0o": 8, "0x": 16}.get(text[:2], 10)
    return sign * int(text[2:] if base != 10 else text, base)


_ParamsLoader.yaml_implicit_resolvers = _resolvers_12()
_ParamsLoader.add_constructor(INT, _construct_int)  # PyYAML copies the table on a change


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
    wide = bom_codec(data[:4]) or wide_codec(data[:512])  # utf-16/32, with a BOM or without
    if wide:
        raise ParamsError(f"{where}: is {wide.upper()}; save it as UTF-8")
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
    """Plain data from params YAML text, read as `load_params` reads it (YAML 1.2 booleans
    and numbers, merges, no duplicate keys); ParamsError naming `where` when it is not
    valid YAML."""
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
