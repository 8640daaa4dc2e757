"""Raw records: read every data file under the raw folder and validate each row for the task.

Formats: JSON Lines (one object per line), CSV/TSV (a header row) and Parquet; which files
are read, and how their bytes decode (gzip, UTF-16 ...), is `llmops.sources`' part. A file
that stops being readable partway (a truncated gzip stream, broken UTF-16, a damaged
Parquet file) gives one `unreadable` rejection for the rest of it.

The schema comes from the task declaration (params.yaml `task`) and the column mapping
(params.yaml `prep`): each declared field is read from its column (`prep.columns`, else
the column of its own name) and must be a string; a label field must hold one of its
values; a text field must not be empty after cleaning nor longer than its `max_chars`.
`prep.id_column` names the row id (a string or an integer), `prep.split_column` an
optional pin to a split. Other columns are ignored.

Each row becomes a `Record` or a `Rejection` with its file, row and reason (`REASONS`).
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.params import SPLITS, PrepParams
from llmops.redact import INVISIBLE
from llmops.sources import Encoding, data_format, encoding_of, lines, text_stream
from llmops.task import Task

# Every reason a row can be rejected for, in the order the checks run.
REASONS = (
    "invalid_utf8", "malformed_json", "malformed_row", "not_an_object", "missing_field",
    "wrong_type", "unknown_label", "invalid_split", "empty_field", "too_long",
    "duplicate", "near_duplicate", "duplicate_id", "unreadable",
)  # fmt: skip
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # control characters that are not whitespace
SPACE = re.compile(r"\s+")


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


@dataclass(frozen=True)
class Rejection:
    """A row that is not used, with why; `raw` is the row as read (redacted before storing)."""

    where: str
    reason: str
    detail: str
    raw: str


def read_rows(
    path: Path, name: str, encoding: Encoding | None = None
) -> Iterator[tuple[str, dict | Rejection, str]]:
    """Yield ("name:row", parsed object or Rejection, raw text) for each row of a file.
    `encoding`: as `llmops.sources.raw_files` found it; else the file is looked at here
    (NotDataError when it is not data at all)."""
    encoding = encoding or encoding_of(path)
    rows = {"jsonl": _read_jsonl, "csv": _read_csv, "tsv": _read_csv,
            "parquet": _read_parquet}[data_format(path)]  # fmt: skip
    number = 0
    try:
        for where, obj, text in rows(path, name, encoding):
            number = int(where.rsplit(":", 1)[1])
            yield where, obj, text
    except _unreadable() as err:
        where = f"{name}:{number + 1}"
        detail = f"cannot be read past row {number}: {type(err).__name__}: {err}"[:300]
        yield where, Rejection(where, "unreadable", detail, ""), ""


def _unreadable() -> tuple[type[BaseException], ...]:
    """Errors of a file that stops being readable partway."""
    import pyarrow

    return (OSError, EOFError, zlib.error, UnicodeDecodeError, pyarrow.ArrowException)


def _read_jsonl(
    path: Path, name: str, encoding: Encoding
) -> Iterator[tuple[str, dict | Rejection, str]]:
    for where, line in read_lines(path, name, encoding):
        yield where, parse_json(where, line), line.decode("utf-8", "backslashreplace")


def read_lines(
    path: Path, name: str, encoding: Encoding | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield ("name:line", UTF-8 bytes) for each non-blank line; blank lines are not rows."""
    for number, line in enumerate(lines(path, encoding or Encoding()), start=1):
        line = line.rstrip(b"\r\n")
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
        if line.strip():
            yield f"{name}:{number}", line


def parse_json(where: str, line: bytes) -> dict | Rejection:
    """Decode and parse one JSON Lines row."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raw = line.decode("utf-8", "backslashreplace")
        return Rejection(where, "invalid_utf8", f"byte {line[err.start]:#04x} at {err.start}", raw)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return Rejection(where, "malformed_json", f"{err.msg} at column {err.colno}", text)
    except (ValueError, RecursionError) as err:  # a 5000-digit number, nesting 100k deep
        return Rejection(where, "malformed_json", f"{type(err).__name__}: {err}"[:200], text)
    if not isinstance(obj, dict):
        return Rejection(where, "not_an_object", f"a JSON {_json_type(obj)}", text)
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:  # "\ud800" escapes decode to lone surrogates
        return Rejection(where, "invalid_utf8", f"lone surrogate {err.object[err.start]!a}", text)
    return obj


def _read_csv(
    path: Path, name: str, encoding: Encoding
) -> Iterator[tuple[str, dict | Rejection, str]]:
    delimiter = "\t" if data_format(path) == "tsv" else ","
    with text_stream(path, encoding) as text:  # bad UTF-8: lone surrogates, rejected per row
        reader = csv.DictReader(text, delimiter=delimiter, strict=True)
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as err:
                where = f"{name}:{reader.line_num}"
                yield where, Rejection(where, "malformed_row", f"CSV: {err}", ""), ""
                continue
            where = f"{name}:{reader.line_num}"
            raw = json.dumps(row, ensure_ascii=False, default=str)
            yield where, _csv_row(where, row, raw), raw


def _csv_row(where: str, row: dict, raw: str) -> dict | Rejection:
    if None in row or None in row.values():
        return Rejection(where, "malformed_row", "a row with another number of cells", raw)
    bad = next((k for k, v in row.items() if _has_surrogate(str(k) + v)), None)
    if bad is not None:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Rejection(where, "invalid_utf8", f"column {bad!r}: bytes that are not UTF-8", raw)
    return row


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _read_parquet(
    path: Path, name: str, _: Encoding
) -> Iterator[tuple[str, dict | Rejection, str]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            where = f"{name}:{number}"
            yield where, row, json.dumps(row, ensure_ascii=False, default=str)


def normalize(text: str, form: str) -> str:
    """Unicode normal form, control characters as spaces, invisible ones (zero-width space,
    soft hyphen, direction marks) removed, whitespace collapsed to single spaces, stripped."""
    text = INVISIBLE.sub("", unicodedata.normalize(form, text))
    return SPACE.sub(" ", CONTROL.sub(" ", text)).strip()


def dedupe_key(text: str) -> str:
    """Key under which two texts count as the same (case and whitespace ignored)."""
    return SPACE.sub(" ", text.casefold()).strip()


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
            fields[field.name] = value
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


def column(field: str, prep: PrepParams) -> str:
    """The raw column a task field is read from."""
    return prep.columns.get(field, field)


def _check_fields(obj: dict, task: Task, prep: PrepParams) -> tuple[str, str] | None:
    named = [(f.name, column(f.name, prep)) for f in task.fields]
    if prep.id_column:
        named.insert(0, ("id", prep.id_column))
    missing = [_show(name, col) for name, col in named if col not in obj]
    if missing:
        return "missing_field", f"missing {', '.join(missing)}"
    for name, col in named:
        value = obj[col]
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            continue  # integer ids are fine; they are kept as text
        if not isinstance(value, str):
            kind = _json_type(value)
            return "wrong_type", f"{_show(name, col)}: expected a string, got {kind}"
    if prep.id_column and not str(obj[prep.id_column]).strip():
        return "wrong_type", f"{_show('id', prep.id_column)}: expected a non-empty string"
    for field in task.fields:
        value = obj[column(field.name, prep)]
        if field.is_label and value not in field.values:
            return "unknown_label", f"{field.name}: {value!r} not in {list(field.values)}"
    split = obj.get(prep.split_column) if prep.split_column else None
    if split not in (None, "", *SPLITS):
        return "invalid_split", f"{prep.split_column}: {split!r} not in {list(SPLITS)} or empty"
    return None


def _show(name: str, col: str) -> str:
    return name if name == col else f"{name} (column {col!r})"


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
             dict: "object"}  # fmt: skip
    return "null" if value is None else names.get(type(value), type(value).__name__)
