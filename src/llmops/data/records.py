"""Raw records: validate each row read from the raw files against the task.

Rows come from `llmops.data.readers` (JSON Lines, CSV/TSV, Parquet; re-exported here). The
schema comes from the task declaration (task.yaml `task`) and the column mapping
(task.yaml `prep`): each declared field is read from its column (`prep.columns`, else
the column of its own name) and must be a string; a label field must hold one of its
values (compared as `llmops.config.textnorm.label_key` compares them, and up to case when
`prep.label_case` is fold: the row gets the declared spelling); a text field must not be
empty after cleaning nor longer than its `max_chars`. `prep.id_column` names the row id (a
string or an integer), `prep.split_column` an optional pin to a split. Other columns are
ignored; a column or key that occurs twice is `duplicate_column` when it is read (which
one was meant cannot be known).

Each row becomes a `Record` or a `Rejection` with its file, row and reason (`REASONS`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from llmops.config.params import SPLITS, PrepParams
from llmops.config.task import Task
from llmops.config.textnorm import dedupe_key, label_key, normalize
from llmops.data.readers import Rejection, Row, json_type, parse_json, read_lines, read_rows

# Every reason a row can be rejected for, in the order the checks run.
REASONS = (
    "invalid_utf8",
    "malformed_json",
    "malformed_row",
    "not_an_object",
    "duplicate_column",
    "missing_field",
    "wrong_type",
    "unknown_label",
    "invalid_split",
    "empty_field",
    "too_long",
    "duplicate",
    "near_duplicate",
    "duplicate_id",
    "unreadable",
)


@dataclass(frozen=True)
class Record:
    """A valid, normalised row; `where` is "file:row" for tracing."""

    id: str
    fields: dict[str, str]
    pin: str | None
    where: str

    def row(self) -> dict[str, str]:
        """The row as written to the prepared splits."""
        return {"id": self.id, **self.fields, "source": self.where}


def parse_row(
    where: str, obj: dict, raw: str, task: Task, prep: PrepParams, pin: str | None = None
) -> Record | Rejection:
    """Validate and clean one parsed row; `pin` is its file's split pin, if any, and wins
    over the row's own split column (an official test file stays the test set)."""
    problem = _check_fields(obj, task, prep)
    if problem:
        return Rejection(where, *problem, raw)
    fields = {}
    for field in task.fields:
        value = obj[column(field.name, prep)]
        if field.is_label:
            fields[field.name] = declared_label(field.values, value, prep.label_case)
            continue
        value = normalize(value, prep.unicode_form)
        if not value:
            return Rejection(where, "empty_field", f"{field.name}: empty after cleaning", raw)
        if len(value) > field.max_chars:
            detail = f"{field.name}: {len(value)} chars > {field.max_chars}"
            return Rejection(where, "too_long", detail, raw)
        fields[field.name] = value
    row_pin = obj.get(prep.split_column) if prep.split_column else None
    identifier = str(obj[prep.id_column]).strip() if prep.id_column else ""
    return Record(identifier, fields, pin or row_pin or None, where)


def declared_label(values: tuple[str, ...], value: str, case: str = "exact") -> str | None:
    """The declared label `value` stands for (compared as `label_key` compares: Unicode
    form, invisible characters and surrounding space ignored; case too when `case` is
    "fold"), or None when it is none of `values`."""
    return _labels(values, case == "fold").get(label_key(value, case == "fold"))


@functools.lru_cache(maxsize=64)
def _labels(values: tuple[str, ...], fold: bool) -> dict[str, str]:
    return {label_key(v, fold): v for v in values}


def column(field: str, prep: PrepParams) -> str:
    """The raw column a task field is read from."""
    return prep.columns.get(field, field)


def _check_fields(obj: dict, task: Task, prep: PrepParams) -> tuple[str, str] | None:
    named = [(f.name, column(f.name, prep)) for f in task.fields]
    if prep.id_column:
        named.insert(0, ("id", prep.id_column))
    repeated = set(getattr(obj, "repeated", ()))
    for name, col in [*named, ("split", prep.split_column)]:
        if col in repeated:
            detail = f"{_show(name, col)}: the column appears more than once; rename the others"
            return "duplicate_column", detail
    missing = [_show(name, col) for name, col in named if col not in obj]
    if missing:
        return "missing_field", f"missing {', '.join(missing)}"
    for name, col in named:
        value = obj[col]
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            continue  # integer ids are fine; they are kept as text
        if not isinstance(value, str):
            kind = json_type(value)
            return "wrong_type", f"{_show(name, col)}: expected a string, got {kind}"
    if prep.id_column and not str(obj[prep.id_column]).strip():
        return "wrong_type", f"{_show('id', prep.id_column)}: expected a non-empty string"
    for field in task.fields:
        value = obj[column(field.name, prep)]
        if field.is_label and declared_label(field.values, value, prep.label_case) is None:
            shown = list(field.values)
            return "unknown_label", f"{field.name}: {_quoted(value)} not in {shown!r:.300}"
    split = obj.get(prep.split_column) if prep.split_column else None
    if split not in (None, "", *SPLITS):
        detail = f"{prep.split_column}: {_quoted(split)} not in {list(SPLITS)} or empty"
        return "invalid_split", detail
    return None


def _quoted(value: object) -> str:
    """A value from the data, for a rejection's detail: cleaned as text fields are (no
    invisible characters or line breaks to hide PII from redaction, which runs on the
    detail next), at most 200 characters, in quotes."""
    return f"'{normalize(str(value), 'NFC')[:200]}'"


def _show(name: str, col: str) -> str:
    return name if name == col else f"{name} (column {col!r})"


__all__ = [  # the readers are re-exported: callers find rows and records in one place
    "REASONS",
    "Record",
    "Rejection",
    "Row",
    "column",
    "declared_label",
    "dedupe_key",
    "json_type",
    "parse_json",
    "parse_row",
    "read_lines",
    "read_rows",
]
