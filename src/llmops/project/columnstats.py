"""What `make init` learns about a data file, in one streaming pass whose memory does not
grow with the rows.

`scan(path, wanted, limits)` reads a file the way prep does (`llmops.data.records.read_rows`;
rows prep would reject for their form are left out: they say nothing about the schema) and
keeps, per column in `wanted`, only what init needs (`ColumnStats`): the distinct values
with their row counts (capped: a column with more distinct values than `MAX_DISTINCT` is
no label column, and the counts are dropped), the longest value, and the first value that
is not a string. Column names are kept in order of first appearance (the first
`MAX_COLUMNS`). Reading is bounded as prep bounds it (`llmops.data.sources.Limits`): a file
that expands past `prep.max_file_mb`, or stops being readable partway, is refused as soon
as that is known (prep would stop there too); a row past `prep.max_row_kb` is left out.
`describe` turns a column's statistics into the task field it becomes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from llmops.data.records import Rejection, json_type, read_rows
from llmops.data.sources import FORMATS, Limits, NotDataError, data_format
from llmops.project.declaration import Column, InitError
from llmops.project.fieldname import field_name
from llmops.project.labelset import check_learnable, label_set

MAX_DISTINCT = 10_000  # more distinct values than this: not a label column
MAX_DISTINCT_CHARS = 1_000_000  # and the values kept per column stay this small in all
MAX_COLUMNS = 1_000  # column names kept for messages (a JSONL file may invent one per row)


@dataclass
class ColumnStats:
    """One column of one file, summed over its rows."""

    counts: Counter[str] | None = field(default_factory=Counter)  # None: past the caps
    chars: int = 0  # characters held in `counts`
    longest: int = 0  # the longest string value, surrounding space stripped
    widest: int = 0  # the longest value as text, whatever its type
    other: str | None = None  # the JSON type of the first value that is not a string

    def add(self, value: object) -> None:
        """Count one row's cell (None: the row has no such cell, or an empty one)."""
        if value is None:
            return
        if not isinstance(value, str):
            self.other = self.other or json_type(value)  # its type: a value may hold PII
            self.widest = max(self.widest, len(str(value)))
            return
        size = len(value)
        self.widest = max(self.widest, size)
        if size > self.longest:  # a stripped value is never longer than `size`
            self.longest = max(self.longest, len(value.strip()))
        counts = self.counts
        if counts is None:
            return
        if value in counts:
            counts[value] += 1
        elif len(counts) >= MAX_DISTINCT or self.chars + size > MAX_DISTINCT_CHARS:
            self.counts = None  # not a label column; freed so memory stays flat
        else:
            counts[value] = 1
            self.chars += size

    def merge(self, other: ColumnStats) -> ColumnStats:
        """The two summed (the same column in two files)."""
        counts = None
        if self.counts is not None and other.counts is not None:
            counts = self.counts + other.counts
            if len(counts) > MAX_DISTINCT:
                counts = None
        return ColumnStats(
            counts,
            self.chars + other.chars,
            max(self.longest, other.longest),
            max(self.widest, other.widest),
            self.other or other.other,
        )


@dataclass(frozen=True)
class FileStats:
    """A data file's column names (in order of first appearance) and the wanted columns'
    statistics."""

    path: Path
    columns: list[str]
    stats: dict[str, ColumnStats]
    rows: int

    def split_valid(self, column: str) -> bool:
        """Whether every row's `column` is empty or a split prep knows."""
        from llmops.config.params import SPLITS

        st = self.stats.get(column)
        if st is None:
            return True
        return st.counts is not None and st.other is None and set(st.counts) <= {"", *SPLITS}


def scan(path: Path, wanted: Collection[str], limits: Limits) -> FileStats:
    """Read `path` once, keeping the statistics of the `wanted` columns (see the module)."""
    if not path.is_file():
        raise InitError(f"{path}: file not found")
    if data_format(path) is None:
        raise InitError(f"{path}: expected one of {', '.join(FORMATS)} (optionally .gz)")
    names: dict[str, None] = {}
    stats: dict[str, ColumnStats] = {}
    rows = 0
    try:
        for _, obj, _ in read_rows(path, path.as_posix(), limits=limits):
            if isinstance(obj, Rejection):
                if obj.reason == "unreadable":  # too large, or damaged: prep stops there
                    raise InitError(f"{path}: {obj.detail}")
                continue
            rows += 1
            for name, value in obj.items():
                st = stats.get(name)
                if st is None:
                    if name not in names and len(names) < MAX_COLUMNS:
                        names[name] = None
                    if name not in wanted:
                        continue
                    st = stats[name] = ColumnStats()
                    names.setdefault(name, None)
                st.add(value)
    except NotDataError as why:
        raise InitError(f"{path}: {why}") from None
    if not rows:
        raise InitError(f"{path}: no readable rows")
    return FileStats(path, list(names), stats, rows)


def combined(files: list[FileStats], column: str) -> ColumnStats:
    """A column's statistics over every file that has it."""
    total = ColumnStats()
    for f in files:
        if column in f.stats:
            total = total.merge(f.stats[column])
    return total


def describe(column: str, role: str, kind: str, files: list[FileStats], fold: bool) -> Column:
    """The field a column becomes, with its labels (`llmops.project.labelset`; `fold`: up to case)
    or its longest text measured; `files[0]` is the training data. Empty cells are left out
    (prep quarantines those rows); anything but text is refused."""
    for f in files:
        other = f.stats[column].other if column in f.stats else None
        if other is not None:
            raise InitError(
                f"{f.path}: column {column!r} holds values that are not text (e.g. a {other}); "
                "prep reads every field as a string: convert it first"
            )
    total = combined(files, column)
    if kind == "text":
        max_chars = max(100, math.ceil(1.25 * total.longest / 100) * 100)
        return Column(
            column, field_name(column), kind, role, max_chars=max_chars, widest=total.widest
        )
    where = ", ".join(str(f.path) for f in files)
    if total.counts is None:
        raise InitError(
            f"{where}: column {column!r} has more than {MAX_DISTINCT:,} distinct values (or "
            f"more than {MAX_DISTINCT_CHARS:,} characters of them): not a label column; "
            f"generate it as free text (TEXTS={column}) or name another LABELS column"
        )
    labels = label_set(column, total.counts, fold)
    if len(labels.values) < 2:
        raise InitError(
            f"{where}: column {column!r} has {len(labels.values)} distinct label(s); need 2+"
        )
    in_data = labels.tally(files[0].stats[column].counts or Counter())
    warning = check_learnable(column, labels, in_data, str(files[0].path))
    return Column(
        column,
        field_name(column),
        kind,
        role,
        labels.values,
        labels.counts,
        widest=max(len(v) for v in labels.values),
        notes=((warning,) if warning else ()) + labels.merges,
        in_data=tuple(in_data[v] for v in labels.values),
    )
