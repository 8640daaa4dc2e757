"""Turn a fresh clone of the template into your project, from your data.

Run: make init DATA=path/to/train.csv [TEST=path/to/test.csv] [INPUT=text] [LABELS=label]
     [TEXTS=answer]
     (python -m llmops.init --data ... [--test ...] [--input ...] [--labels ...] [--texts ...])

It reads your data file (CSV, JSON Lines or Parquet, as prep does) and:
- declares the task in params.yaml `task`: the input column(s) as text fields, the label
  column(s) as label fields with their values read from the data (counts shown), optional
  free-text output column(s); column names that are not valid field names are mapped in
  `prep.columns`; an `id` and a `split` column are used when present;
- writes a starter prompt, prompts/task.jinja (it lists the label values when there are at
  most 20 of them; with more, the model learns them in training and prompts stay short);
- copies the data into data/raw/; a TEST file is pinned whole to the test split
  (`prep.pin_files`), else 10% of each label's rows are held out (`prep.test_fraction`);
- sizes `train.max_length`, `base.tiny.context_length` and `decoding.max_new_tokens` to the
  data, and writes gates that name the task's metrics;
- removes the worked example (each examples/*/example.yaml lists the files it owns) and the
  pipeline state that described it (dvc.lock, metrics/, reports/, stage outputs);
then checks the result loads, and prints what to run next. Comments in params.yaml stay.
"""

from __future__ import annotations

import argparse
import io
import math
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llmops.params import RESERVED, ParamsError, load_params
from llmops.records import FORMATS, Rejection, read_rows

INPUT_NAMES = ("text", "message", "input", "prompt", "question", "sentence", "utterance",
               "query", "content")  # fmt: skip
LABEL_NAMES = ("label", "labels", "intent", "class", "target")
LIST_VALUES_UP_TO = 20  # label sets larger than this are not spelled out in the prompt
PIPELINE_STATE = ("dvc.lock", "metrics", "reports/prep", "reports/train", "reports/eval",
                  "data/prepared", "data/quarantine", "data/eval/predictions.jsonl",
                  "models/base", "models/adapter", "models/checkpoints")  # fmt: skip
PROMPT = Path("prompts/task.jinja")


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


def read_table(path: Path) -> tuple[list[str], list[dict]]:
    """The columns (in order of first appearance) and the rows of a data file."""
    if not path.is_file():
        raise InitError(f"{path}: file not found")
    if path.suffix.lower() not in FORMATS:
        raise InitError(f"{path}: expected one of {', '.join(FORMATS)}")
    rows, columns = [], {}
    for _, obj, _ in read_rows(path, path.as_posix()):
        if isinstance(obj, Rejection):
            continue  # prep quarantines it, with its reason; it says nothing about the schema
        rows.append(obj)
        columns.update(dict.fromkeys(obj))
    if not rows:
        raise InitError(f"{path}: no readable rows")
    return list(columns), rows


def field_name(column: str) -> str:
    """A valid field name for a column: letters, digits and _, not a reserved name."""
    name = re.sub(r"\W+", "_", column).strip("_") or "field"
    name = f"f_{name}" if name[0].isdigit() else name
    return f"{name}_field" if name in RESERVED else name


def pick(given: str, columns: list[str], defaults: tuple[str, ...], what: str) -> list[str]:
    """The columns named in `given` (comma-separated), else the first default present."""
    if given:
        names = [c.strip() for c in given.split(",") if c.strip()]
        missing = [c for c in names if c not in columns]
        if missing:
            raise InitError(f"{what} column(s) {missing} not in the data; it has {columns}")
        return names
    found = next((c for c in defaults if c in columns), None)
    if found is None:
        flag = "INPUT" if what == "input" else "LABELS"
        raise InitError(f"name the {what} column: {flag}=<column>; the data has {columns}")
    return [found]


def describe(column: str, role: str, kind: str, rows: list[dict], where: Path) -> Column:
    """The field a column becomes, with its label values or longest text measured."""
    values = [r.get(column) for r in rows]
    strings = [v for v in values if isinstance(v, str)]
    if len(strings) < len(values):
        raise InitError(
            f"{where}: column {column!r} holds values that are not text (e.g. "
            f"{next(v for v in values if not isinstance(v, str))!r}); prep reads every "
            "field as a string: convert the column to text first"
        )
    if kind == "text":
        longest = max(len(v.strip()) for v in strings)
        max_chars = max(100, math.ceil(1.25 * longest / 100) * 100)
        return Column(column, field_name(column), kind, role, max_chars=max_chars)
    counts = Counter(v for v in strings if v.strip())
    if len(counts) < 2:
        raise InitError(f"{where}: column {column!r} has {len(counts)} distinct label(s); need 2+")
    labels = tuple(sorted(counts))
    return Column(column, field_name(column), kind, role, labels,
                  tuple(counts[v] for v in labels))  # fmt: skip


def starter_prompt(columns: list[Column]) -> str:
    """A completion prompt that shows the inputs and asks for the JSON answer."""
    inputs = [c for c in columns if c.role == "input"]
    outputs = [c for c in columns if c.role == "output"]
    listed = [c for c in outputs if c.kind == "label" and len(c.values) <= LIST_VALUES_UP_TO]
    used = [c.field for c in inputs] + [f"{c.field}_values" for c in listed]
    header = [f"{{#- variables: {', '.join(used)}"]
    header += [f"    {c.field:<16} (str)        the {c.column!r} column, cleaned by prep"
               for c in inputs]  # fmt: skip
    header += [f"    {c.field + '_values':<16} (list[str])  task.outputs.{c.field}.values"
               for c in listed]  # fmt: skip
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
    y.preserve_quotes = True
    y.width = 100
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


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
    while hasattr(old, "ca") and len(old) and hasattr(value, "ca") and len(value):
        last_old, last_new = list(old)[-1], list(value)[-1]
        if last_old in old.ca.items and not hasattr(old[last_old], "ca"):
            value.ca.items[last_new] = old.ca.items[last_old]
            return
        old, value = old[last_old], value[last_new]


def sizes(columns: list[Column], prompt: str, rows: list[dict]) -> tuple[int, int]:
    """(train.max_length, decoding.max_new_tokens), counted generously as one token per
    character (a bound costs nothing; the base stage checks the real token counts)."""
    body = prompt.split("-#}", 1)[1]
    inputs = [c for c in columns if c.role == "input"]
    outputs = [c for c in columns if c.role == "output"]
    longest_input = sum(c.max_chars for c in inputs)
    longest_answer = max(
        sum(len(str(r.get(c.column, ""))) + len(c.field) + 6 for c in outputs) for r in rows
    )
    length = math.ceil((len(body) + longest_input + longest_answer + 16) / 64) * 64
    return max(320, length), max(32, math.ceil((longest_answer + 16) / 16) * 16)


def task_section(columns: list[Column]):
    from ruamel.yaml.comments import CommentedMap

    def fields(role: str):
        out = CommentedMap()
        for c in (c for c in columns if c.role == role):
            spec = {"kind": c.kind}
            spec |= {"values": flow(list(c.values))} if c.kind == "label" else {}
            spec |= {"max_chars": c.max_chars} if c.kind == "text" else {}
            out[c.field] = flow(spec)
        return out

    task = CommentedMap(prompt=PROMPT.as_posix())
    task.yaml_add_eol_comment("written by make init", "prompt")
    task["inputs"], task["outputs"] = fields("input"), fields("output")
    return task


def write_params(root: Path, columns: list[Column], source: dict, prompt: str, rows) -> str:
    """params.yaml with the task, data mapping, sizes and gates of this data."""
    from ruamel.yaml.comments import CommentedMap

    y = yaml_tool()
    data = y.load((root / "params.yaml").read_text(encoding="utf-8"))
    replace(data, "task", task_section(columns))
    prep = data["prep"]
    prep["columns"] = flow({c.field: c.column for c in columns if c.field != c.column})
    prep["id_column"], prep["split_column"] = source["id"], source["split"]
    prep["pin_files"] = flow({"test": flow(source["test"])} if source["test"] else {})
    prep["test_fraction"] = 0.0 if source["test"] else 0.1
    max_length, new_tokens = sizes(columns, prompt, rows)
    data["train"]["max_length"] = max_length
    tiny = data["base"]["tiny"]
    tiny["context_length"] = max(int(tiny["context_length"]), max_length)
    data["decoding"]["max_new_tokens"] = new_tokens
    labels = [c.field for c in columns if c.role == "output" and c.kind == "label"]
    texts = [c.field for c in columns if c.role == "output" and c.kind == "text"]
    drops = {f"{f}_accuracy": 0.05 for f in labels} | {f"{f}_rouge_l": 0.05 for f in texts}
    replace(data["gate"], "min", CommentedMap(json_valid=0.9))
    replace(data["gate"], "max_drop", CommentedMap(drops))
    out = io.StringIO()
    y.dump(data, out)
    # ruamel wraps long flow lists after ", ": no trailing spaces in the file.
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def remove_example(root: Path) -> list[str]:
    """Delete every worked example (examples/*/example.yaml) and the files it owns, and the
    pipeline state that described it. Returns what was removed."""
    y = yaml_tool()
    removed = []
    for manifest in sorted(root.glob("examples/*/example.yaml")):
        for rel in y.load(manifest.read_text(encoding="utf-8")).get("owns", []):
            if _remove(root / rel):
                removed.append(rel)
        shutil.rmtree(manifest.parent)
        removed.append(manifest.parent.relative_to(root).as_posix() + "/")
    examples = root / "examples"
    if examples.is_dir() and not any(
        p.is_dir() and p.name != "__pycache__" for p in examples.iterdir()
    ):
        shutil.rmtree(examples)
        removed.append("examples/")
    removed += [rel for rel in PIPELINE_STATE if _remove(root / rel)]
    return removed


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False


def raw_name(root: Path, path: Path, name: str | None = None) -> str:
    """The file's name under data/raw/ (its place there if it is there already)."""
    raw = (root / "data" / "raw").resolve()
    if path.resolve().is_relative_to(raw):
        return path.resolve().relative_to(raw).as_posix()
    return name or path.name


def copy_in(root: Path, path: Path, name: str) -> None:
    """Put a data file under data/raw/ as `name` (unless it is there already)."""
    target = root / "data" / "raw" / name
    if target.resolve() != path.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def init(root: Path, data: Path, test: Path | None, inputs: str, labels: str, texts: str):
    """Do everything the module docstring lists; returns (columns, removed files). Nothing
    is changed until the new params and prompt have been checked."""
    names, rows = read_table(data)
    all_rows = rows + (read_table(test)[1] if test else [])
    chosen_inputs = pick(inputs, names, INPUT_NAMES, "input")
    chosen_labels = pick(labels, names, LABEL_NAMES, "label")
    chosen_texts = pick(texts, names, (), "text output") if texts else []
    taken = chosen_inputs + chosen_labels + chosen_texts
    if len(set(taken)) < len(taken):
        raise InitError(f"a column is named twice among INPUT, LABELS and TEXTS: {taken}")
    columns = [describe(c, "input", "text", all_rows, data) for c in chosen_inputs]
    columns += [describe(c, "output", "label", all_rows, data) for c in chosen_labels]
    columns += [describe(c, "output", "text", all_rows, data) for c in chosen_texts]
    fields = [c.field for c in columns]
    if len(set(fields)) < len(fields):
        raise InitError(f"two columns map to the same field name: {fields}")
    prompt = starter_prompt(columns)
    train_name = raw_name(root, data)
    test_name = None
    if test is not None:
        clash = Path(raw_name(root, test)).name == Path(train_name).name
        test_name = raw_name(root, test, f"test-{test.name}" if clash else None)
    source = {
        "id": "id" if "id" in names and "id" not in taken else None,
        "split": "split" if "split" in names and "split" not in taken else None,
        "test": [test_name] if test_name else [],
    }
    text = write_params(root, columns, source, prompt, all_rows)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / PROMPT).parent.mkdir(parents=True)
        (Path(scratch) / PROMPT).write_text(prompt, encoding="utf-8")
        (Path(scratch) / "params.yaml").write_text(text, encoding="utf-8")
        check(Path(scratch))
    removed = remove_example(root)
    copy_in(root, data, train_name)
    if test is not None:
        copy_in(root, test, test_name)
    (root / PROMPT).parent.mkdir(parents=True, exist_ok=True)
    (root / PROMPT).write_text(prompt, encoding="utf-8")
    (root / "params.yaml").write_text(text, encoding="utf-8")
    return columns, removed


def check(root: Path) -> None:
    """The written params load, the prompt fits the task and the gates name real metrics."""
    from llmops.metrics import check_gates
    from llmops.prompts import load_template
    from llmops.task import Task

    params = load_params(root / "params.yaml")
    task = Task.from_params(params.task)
    load_template(root / params.task.prompt, task.variables())
    check_gates(task, params.gate)


def summary(columns: list[Column], removed: list[str]) -> str:
    lines = ["Task declared in params.yaml (task), prompt in prompts/task.jinja:"]
    for c in columns:
        mapped = f" (column {c.column!r})" if c.field != c.column else ""
        lines.append(f"  {c.role:6} {c.field}{mapped}: {c.kind}")
        if c.kind == "label":
            shown = ", ".join(f"{v} ({n})" for v, n in zip(c.values, c.counts, strict=True))
            lines.append(f"         {len(c.values)} labels: {shown}")
    if removed:
        lines.append(f"Removed the worked example and its pipeline state: {', '.join(removed)}")
    lines += [
        "Next:",
        "  make repro      # prep -> base -> train -> eval on your data",
        "  make gate       # the quality gates (params.yaml gate)",
        "  make test       # the test suite",
        "  git add -A && git commit -m 'My task'   (data of more than a few MB: "
        "git rm -r --cached data/raw && dvc add data/raw)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training data file (CSV, JSONL, Parquet)")
    parser.add_argument(
        "--test", default="", help="a separate test file, kept whole as the test set"
    )
    parser.add_argument("--input", default="", help="input column(s), comma-separated")
    parser.add_argument("--labels", default="", help="label column(s) to predict")
    parser.add_argument("--texts", default="", help="free-text column(s) to generate")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project's folder")
    args = parser.parse_args(argv)
    if not args.data:
        raise SystemExit("init: give your data: make init DATA=path/to/train.csv")
    try:
        test = Path(args.test) if args.test else None
        columns, removed = init(args.root, Path(args.data), test, args.input, args.labels,
                                args.texts)  # fmt: skip
    except (InitError, ParamsError, ValueError) as err:
        raise SystemExit(f"init: {err}") from None
    print(summary(columns, removed))


if __name__ == "__main__":
    main()
