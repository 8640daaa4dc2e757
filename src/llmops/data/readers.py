"""Rows of a raw data file, format by format: JSON Lines, CSV/TSV and Parquet.

`read_rows(path, name)` yields ("name:row", parsed Row or Rejection, raw text) for every
row; which files are read, and how their bytes decode (gzip, UTF-16 ...), is
`llmops.data.sources`' part, and what a row must hold is `llmops.data.records`'. Reading is bounded
(`llmops.data.sources.Limits`): a row longer than `prep.max_row_kb` is `too_long` unparsed, a
file past `prep.max_file_mb` is `unreadable` from there on, as is a file that stops being
readable partway (a truncated gzip stream, broken UTF-16, a damaged Parquet file). A CSV
record is found by its quoting (`llmops.data.csvrows`), so a broken or huge cell is one
rejected row and never turns into rows of its own. A row that could not be parsed comes
with no raw text: what is not a row is not copied on.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.data import csvrows
from llmops.data.sources import (
    Encoding,
    Limits,
    LongLine,
    TooLargeError,
    data_format,
    encoding_of,
    lines,
    text_stream,
)


@dataclass(frozen=True)
class Rejection:
    """A row that is not used, with why; `raw` is the row as read (redacted before storing)."""

    where: str
    reason: str
    detail: str
    raw: str


class Row(dict):
    """A parsed row: column -> value. `repeated` names the columns (CSV, Parquet) or keys
    (JSON) that occur more than once; the row holds the last of each, so a row that reads
    one of them is rejected (`duplicate_column`) rather than read wrong."""

    repeated: tuple[str, ...] = ()


def read_rows(
    path: Path, name: str, encoding: Encoding | None = None, limits: Limits | None = None
) -> Iterator[tuple[str, Row | Rejection, str]]:
    """Yield ("name:row", parsed Row or Rejection, raw text) for each row of a file.
    `encoding`: as `llmops.data.sources.raw_files` found it; else the file is looked at here
    (NotDataError when it is not data at all). `limits` bound the file and each row. A row
    that could not be parsed comes with no raw text: what is not a row is not copied on."""
    encoding = encoding or encoding_of(path)
    limits = limits or Limits()
    rows = {"jsonl": _read_jsonl, "csv": _read_csv, "tsv": _read_csv, "parquet": _read_parquet}[
        data_format(path)
    ]
    number = 0
    try:
        for where, obj, text in rows(path, name, encoding, limits):
            number = int(where.rsplit(":", 1)[1])
            yield where, obj, text
    except _unreadable() as err:
        where = f"{name}:{number + 1}"
        if isinstance(err, TooLargeError):
            detail = f"stopped after row {number}: {err}"
        else:
            detail = f"cannot be read past row {number}: {type(err).__name__}: {err}"[:300]
        yield where, Rejection(where, "unreadable", detail, ""), ""


def _unreadable() -> tuple[type[BaseException], ...]:
    """Errors of a file that stops being readable partway (or grows past its limit)."""
    import pyarrow

    return (OSError, EOFError, zlib.error, UnicodeDecodeError, pyarrow.ArrowException)


def _too_long(where: str, size: int, limits: Limits, unit: str = "bytes") -> Rejection:
    detail = f"a row of {size:,} {unit}, over prep.max_row_kb={limits.row_bytes // 1024}"
    return Rejection(where, "too_long", detail, "")


def _read_jsonl(
    path: Path, name: str, encoding: Encoding, limits: Limits
) -> Iterator[tuple[str, Row | Rejection, str]]:
    for where, line in read_lines(path, name, encoding, limits):
        if isinstance(line, LongLine):
            yield where, _too_long(where, line.size, limits, line.unit), ""
            continue
        obj = parse_json(where, line)
        yield where, obj, "" if isinstance(obj, Rejection) else line.decode("utf-8", "replace")


def read_lines(
    path: Path, name: str, encoding: Encoding | None = None, limits: Limits | None = None
) -> Iterator[tuple[str, bytes | LongLine]]:
    """Yield ("name:line", UTF-8 bytes or LongLine) for each non-blank line; blank lines are
    not rows."""
    for number, line in enumerate(lines(path, encoding or Encoding(), limits), start=1):
        if isinstance(line, LongLine):
            yield f"{name}:{number}", line
            continue
        line = line.rstrip(b"\r\n")
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
        if line.strip():
            yield f"{name}:{number}", line


def _pairs(pairs: list[tuple[str, Any]]) -> Row:
    row = Row(pairs)
    if len(row) < len(pairs):
        seen: set[str] = set()
        row.repeated = tuple(k for k, _ in pairs if k in seen or seen.add(k))
    return row


def parse_json(where: str, line: bytes) -> Row | Rejection:
    """Decode and parse one JSON Lines row; a rejection carries the parse error (and the
    raw text only when the line was a JSON object: a rejected row, not foreign content)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejection(where, "invalid_utf8", f"byte {line[err.start]:#04x} at {err.start}", "")
    try:
        obj = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as err:
        return Rejection(where, "malformed_json", f"{err.msg} at column {err.colno}", "")
    except (ValueError, RecursionError) as err:  # a 5000-digit number, nesting 100k deep
        return Rejection(where, "malformed_json", f"{type(err).__name__}: {err}"[:200], "")
    if not isinstance(obj, dict):
        return Rejection(where, "not_an_object", f"a JSON {json_type(obj)}", "")
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:  # "\ud800" escapes decode to lone surrogates
        return Rejection(where, "invalid_utf8", f"lone surrogate {err.object[err.start]!a}", text)
    except (ValueError, RecursionError):  # nested deeper than json.dumps goes
        return Rejection(where, "malformed_json", "nested too deeply", "")
    return obj


def _read_csv(
    path: Path, name: str, encoding: Encoding, limits: Limits
) -> Iterator[tuple[str, Row | Rejection, str]]:
    delimiter = "\t" if data_format(path) == "tsv" else ","
    header: list[str] | None = None
    with text_stream(path, encoding, limits) as text:  # bad UTF-8: lone surrogates, per row
        for line, record in csvrows.records(text, delimiter, limits.row_bytes):
            where = f"{name}:{line}"
            if isinstance(record, csvrows.TooLong):
                yield where, _too_long(where, record.size, limits, "characters"), ""
                continue
            if isinstance(record, csvrows.Unclosed):
                detail = "a quoted cell starts in this row and is never closed"
                yield where, Rejection(where, "malformed_row", detail, ""), ""
                continue
            try:
                cells = csvrows.cells(record, delimiter)
            except csv.Error as err:
                yield where, Rejection(where, "malformed_row", f"CSV: {err}", ""), ""
                continue
            if not cells:
                continue  # a blank line
            if header is None:
                header = cells
                continue
            if len(cells) != len(header):
                detail = f"a row of {len(cells)} cells; the header has {len(header)}"
                yield where, Rejection(where, "malformed_row", detail, ""), ""
                continue
            row = _pairs(list(zip(header, cells, strict=True)))
            raw = json.dumps(row, ensure_ascii=False)
            yield where, _csv_row(where, row, raw), raw


def _csv_row(where: str, row: Row, raw: str) -> Row | Rejection:
    bad = next((k for k, v in row.items() if _has_surrogate(k + v)), None)
    if bad is not None:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Rejection(where, "invalid_utf8", f"column {bad!r}: bytes that are not UTF-8", raw)
    return row


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _read_parquet(
    path: Path, name: str, _: Encoding, limits: Limits
) -> Iterator[tuple[str, Row | Rejection, str]]:
    import pyarrow.parquet as pq

    # The sizes a Parquet file states (its footer, its pages' headers) bound what pyarrow
    # decodes; what it decoded is counted too, batch by batch, against the file's limit.
    with pq.ParquetFile(path) as parquet:
        meta = parquet.metadata
        stated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if stated > limits.file_bytes:
            raise limits.too_large()
        repeated = _pairs([(n, None) for n in parquet.schema_arrow.names]).repeated
        number = decoded = 0
        for batch in parquet.iter_batches(batch_size=256):
            decoded += batch.nbytes
            if decoded > limits.file_bytes:
                raise limits.too_large()
            for values in batch.to_pylist():
                number += 1
                where = f"{name}:{number}"
                size = sum(len(v) if isinstance(v, str | bytes) else 8 for v in values.values())
                if size > limits.row_bytes:
                    yield where, _too_long(where, size, limits, "characters"), ""
                    continue
                row = Row(values)
                row.repeated = repeated
                yield where, row, json.dumps(row, ensure_ascii=False, default=str)


def json_type(value: Any) -> str:
    names = (
        (bool, "boolean"),
        (int | float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    )
    if value is None:
        return "null"
    return next((name for kind, name in names if isinstance(value, kind)), type(value).__name__)
