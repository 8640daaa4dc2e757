"""A task declaration inferred from the user's data, written to task.yaml (and params.yaml's
sizes and gates to fit it).

Used by `make init` (llmops.project.adopt): `Column` is a column of the user's data and
the field it becomes (`llmops.project.columnstats` measures it, `llmops.project.labelset`
settles its labels, `llmops.project.fieldname` names it), `starter_prompt` writes a prompt
for the fields, and `write_declaration` returns task.yaml with the task and the data
mapping, and params.yaml with the sizes and the gates, both edited with ruamel's round trip
so that every comment stays. Every string from the data is written through `scalar`: plain
only where YAML reads it back as that string in any context, else double-quoted.
"""

from __future__ import annotations

import functools
import io
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from llmops.config.params import TinyParams
from llmops.config.paramsfile import ParamsError, read_yaml

INPUT_NAMES = (
    "text",
    "message",
    "input",
    "prompt",
    "question",
    "sentence",
    "utterance",
    "query",
    "content",
)
LABEL_NAMES = ("label", "labels", "intent", "class", "target")
LIST_VALUES_UP_TO = 20  # label sets larger than this are not spelled out in the prompt
# The largest context base.tiny.context_length takes, as params.py bounds it.
MAX_LENGTH = int(
    typing.get_type_hints(TinyParams, include_extras=True)["context_length"].__metadata__[0].hi
)
PROMPT = Path("prompts/task.jinja")
HELD_OUT = 0.1  # prep.test_fraction without a TEST file


class InitError(ValueError):
    """The data or the arguments cannot make a task; the message says what to change."""


@dataclass(frozen=True)
class Column:
    """A column of the user's data and the task field it becomes."""

    column: str
    field: str
    kind: str  # label or text
    role: str  # input or output
    values: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()
    max_chars: int = 0
    widest: int = 0  # the longest value in the data (an answer holds it)
    in_data: tuple[int, ...] = ()  # rows per label value in the training data (prep splits it)
    notes: tuple[str, ...] = ()  # what init did to the values (merges), and warnings


def pick(given: str, columns: list[str], defaults: tuple[str, ...], what: str) -> list[str]:
    """The columns named in `given` (comma-separated), else the first default present
    (none when `defaults` is empty)."""
    if given:
        names = [c.strip() for c in given.split(",") if c.strip()]
        missing = [c for c in names if c not in columns]
        if missing:
            raise InitError(f"{what} column(s) {missing} not in the data; it has {columns}")
        return names
    found = next((c for c in defaults if c in columns), None)
    if found is None and defaults:
        flag = "INPUT" if what == "input" else "LABELS"
        raise InitError(f"name the {what} column: {flag}=<column>; the data has {columns}")
    return [found] if found else []


def starter_prompt(columns: list[Column]) -> str:
    """A completion prompt that shows the inputs and asks for the JSON answer."""
    inputs = [c for c in columns if c.role == "input"]
    outputs = [c for c in columns if c.role == "output"]
    listed = [c for c in outputs if c.kind == "label" and len(c.values) <= LIST_VALUES_UP_TO]
    used = [c.field for c in inputs] + [f"{c.field}_values" for c in listed]
    header = [f"{{#- variables: {', '.join(used)}"]
    # Field names only: a column name is the data's text and could close this comment and
    # put its own instructions in every prompt (task.yaml prep.columns shows it).
    header += [
        f"    {c.field:<16} (str)        task.inputs.{c.field}, cleaned by prep" for c in inputs
    ]
    header += [
        f"    {c.field + '_values':<16} (list[str])  task.outputs.{c.field}.values" for c in listed
    ]
    header.append("  Written by make init; edit it freely (the header must list what it uses). -#}")
    keys = []
    for c in outputs:
        if c in listed:
            keys.append(f'"{c.field}": one of {{{{ {c.field}_values | join("|") }}}}')
        elif c.kind == "label":
            keys.append(f'"{c.field}": the {c.field}')
        else:
            keys.append(f'"{c.field}": text')
    body = [f"Answer with JSON: {{{', '.join(keys)}}}."]
    body += [f"{c.field.capitalize()}: {{{{ {c.field} }}}}" for c in inputs]
    return "\n".join([*header, *body, "Answer:", ""])


def yaml_tool():
    from ruamel.yaml import YAML

    y = YAML()
    y.Emitter = _unfolded_emitter()
    y.preserve_quotes = True
    y.width = 100
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


@functools.cache
def _unfolded_emitter():
    """ruamel's emitter, never folding a double-quoted string across lines: ruamel 0.19
    folds one right after an escaped backslash without escaping the line break, and the
    string then reads back with a space added. Long flow lists still wrap between items."""
    from ruamel.yaml.emitter import Emitter

    class UnfoldedEmitter(Emitter):
        def write_double_quoted(self, text, split=True) -> None:
            super().write_double_quoted(text, split=False)

    return UnfoldedEmitter


def scalar(text: str):
    """A string as YAML writes it so that any YAML reader reads it back as this string:
    plain when it is a simple word or phrase that reads back as itself in a flow list, a
    flow mapping and as a key; else double-quoted, which holds any text."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return text if plain_anywhere(text) else DoubleQuotedScalarString(text)


_SIMPLE = re.compile(r"[^\W\d_][\w.\-/]*(?: [\w.\-/]+)*")  # no YAML indicator anywhere


@functools.lru_cache(maxsize=4096)
def plain_anywhere(text: str) -> bool:
    """Whether `text`, written unquoted, reads back as itself in a flow list, a flow mapping
    and as a key, by PyYAML and by the params reader (not `yes`, `null`, `1e3` ...)."""
    if not _SIMPLE.fullmatch(text):
        return False
    # Each context a document of its own: as a key, `text` may equal another key.
    cases = {f"[{text}]": [text], f"{{k: {text}}}": {"k": text}, f"{text}: c": {text: "c"}}
    try:
        return all(
            yaml.safe_load(doc) == want and read_yaml(doc, "scalar") == want
            for doc, want in cases.items()
        )
    except (yaml.YAMLError, ParamsError):
        return False


def flow(value):
    """A YAML mapping or list written on one line."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    out = CommentedMap(value) if isinstance(value, dict) else CommentedSeq(value)
    out.fa.set_flow_style()
    return out


def replace(parent, key: str, value) -> None:
    """parent[key] = value, keeping the comment that trailed the old value (it introduces
    the next section)."""
    old = parent[key]
    parent[key] = value
    token = _trailing(old)
    target = _last_entry(value)
    if token is not None and target is not None:
        node, last = target
        own = node.ca.items.get(last)
        if own and len(own) > 2 and own[2] is not None:  # the new last entry's own comment
            rest = token.value.partition("\n")[2]  # past the old last entry's own comment
            own[2].value = own[2].value.rstrip("\n") + "\n" + rest
            token = own[2]
        node.ca.items[last] = [None, None, token, None]  # a comment after the value


def _last_entry(node):
    """The innermost last (block mapping, key) of `node`, or None."""
    found = None
    while isinstance(node, dict) and node and not node.fa.flow_style():
        found = (node, list(node)[-1])
        node = node[found[1]]
    return found


def _trailing(node):
    """The comment token after `node`'s last value, where ruamel keeps it: on the innermost
    last key of a block mapping, or on the last item of a block list below it."""
    entry = _last_entry(node)
    if entry is None:
        return None
    parent, last = entry
    inner = parent[last]
    if isinstance(inner, list) and inner and not inner.fa.flow_style():
        item = inner.ca.items.get(len(inner) - 1)
        return item[0] if item else None
    item = parent.ca.items.get(last)
    return item[2] if item and len(item) > 2 else None


def sizes(columns: list[Column], prompt: str) -> tuple[int, int]:
    """(train.max_length, decoding.max_new_tokens), counted generously as one token per
    character (a bound costs nothing; the base stage checks the real token counts); the
    longest answer is bounded by the longest value of each output, summed."""
    body = prompt.split("-#}", 1)[1]
    inputs = [c for c in columns if c.role == "input"]
    outputs = [c for c in columns if c.role == "output"]
    longest_input = sum(c.max_chars for c in inputs)
    longest_answer = sum(c.widest + len(c.field) + 6 for c in outputs)
    length = math.ceil((len(body) + longest_input + longest_answer + 16) / 64) * 64
    tokens = max(32, math.ceil((longest_answer + 16) / 16) * 16)
    return min(MAX_LENGTH, max(320, length)), min(tokens, 4096)


def task_section(columns: list[Column]):
    from ruamel.yaml.comments import CommentedMap

    def fields(role: str):
        out = CommentedMap()
        for c in (c for c in columns if c.role == role):
            spec = {"kind": c.kind}
            spec |= {"values": flow([scalar(v) for v in c.values])} if c.kind == "label" else {}
            spec |= {"max_chars": c.max_chars} if c.kind == "text" else {}
            out[c.field] = flow(spec)
        return out

    task = CommentedMap(prompt=PROMPT.as_posix())
    task.yaml_add_eol_comment("written by make init", "prompt")
    task["inputs"], task["outputs"] = fields("input"), fields("output")
    return task


# task.yaml as make init writes it when a project has none (made before task.yaml existed).
TASK_SKELETON = """\
# Your task, declared once: the prompt template, the input field(s) the model reads, the
# output fields of its JSON answer, and the shape of your raw data (docs/parameters.md).
# `make init DATA=...` wrote it from your data; the knobs live in params.yaml.
task: {}
# The shape of the raw data (read by prep, with params.yaml's prep knobs).
prep: {}
"""


def write_declaration(
    params_text: str,
    task_text: str | None,
    columns: list[Column],
    source: dict,
    prompt: str,
    label_case: str = "exact",
) -> tuple[str, str]:
    """params.yaml and task.yaml for this data: task.yaml holds the task and the data's
    shape (columns, ids, split pins, label matching), params.yaml the sizes, the held-out
    share and the gates. `task_text` None (no task.yaml yet): one is made, and whatever of
    the declaration params.yaml still holds moves there. `label_case` is written when fold,
    or when the key is there already."""
    from ruamel.yaml.comments import CommentedMap

    y = yaml_tool()
    data = y.load(params_text)
    declared = y.load(task_text if task_text is not None else TASK_SKELETON)
    prep = data["prep"]
    for key in ("columns", "id_column", "split_column", "pin_files", "label_case"):
        if key in prep:  # an older layout: the declaration moves to task.yaml
            declared["prep"].setdefault(key, prep.pop(key))
    if "task" in data:
        declared["task"] = data.pop("task")
    replace(declared, "task", task_section(columns))
    shape = declared["prep"]
    shape["columns"] = flow({c.field: scalar(c.column) for c in columns if c.field != c.column})
    shape["id_column"], shape["split_column"] = source["id"], source["split"]
    pins = [scalar(p) for p in source["test"]]
    shape["pin_files"] = flow({"test": flow(pins)} if pins else {})
    if label_case != "exact" or "label_case" in shape:
        shape["label_case"] = label_case
    prep["test_fraction"] = 0.0 if pins else HELD_OUT
    max_length, new_tokens = sizes(columns, prompt)
    data["train"]["max_length"] = max_length
    tiny = data["base"]["tiny"]
    tiny["context_length"] = max(int(tiny["context_length"]), max_length)
    data["decoding"]["max_new_tokens"] = new_tokens
    serve = data.get("serve") or {}
    if "max_tokens" in serve and int(serve["max_tokens"]) < new_tokens:  # long answers
        serve["max_tokens"] = new_tokens  # the service must let a request ask for as many
    labels = [c.field for c in columns if c.role == "output" and c.kind == "label"]
    texts = [c.field for c in columns if c.role == "output" and c.kind == "text"]
    drops = {f"{f}_accuracy": 0.05 for f in labels} | {f"{f}_rouge_l": 0.05 for f in texts}
    floors = CommentedMap(json_valid=0.9)
    floors.yaml_add_eol_comment("floor on the share of answers that parse", "json_valid")
    allowed = CommentedMap(drops)
    for name in drops:  # params.yaml keeps one comment line per knob
        allowed.yaml_add_eol_comment(f"largest allowed drop in {name}", name)
    replace(data["gate"], "min", floors)
    replace(data["gate"], "max_drop", allowed)
    return _dump(y, data), _dump(y, declared)


def _dump(y, document) -> str:
    out = io.StringIO()
    y.dump(document, out)
    # ruamel wraps long flow lists after ", ": no trailing spaces in the file.
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
