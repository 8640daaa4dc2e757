"""CSV and TSV files read record by record, so that no cell can spill into other rows.

`records(text, delimiter, limit)` yields `(line, record)` for each record of a text stream:
the line it starts on and its text (line breaks inside quoted cells included), or
`TooLong(size)` for one longer than `limit` characters, or `Unclosed()` for a quoted cell
that runs to the end of the file. Records are found by the quoting rules Python's csv
module reads with (a cell that starts with `"` runs to the next `"` not doubled; a `"`
elsewhere is a character), one physical line at a time and at most `limit` characters of
it held, so a huge cell costs no memory and a broken record never resynchronises into data:
each record is then parsed on its own (`cells`), and a malformed one is one rejected row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

CHUNK = 1 << 16  # characters read at a time from a long physical line
QUOTE = '"'


@dataclass(frozen=True)
class TooLong:
    """A record longer than the limit: its size in characters (counted, not kept)."""

    size: int


@dataclass(frozen=True)
class Unclosed:
    """A quoted cell opened in this record and never closed before the end of the file."""


@dataclass
class _State:
    quoted: bool = False  # inside a quoted cell
    cell_start: bool = True  # at the first character of a cell
    pending: bool = False  # a quote ended the last piece inside a quoted cell: the next
    # piece's first character says whether it closed the cell or was the first of a pair


def _scan(text: str, state: _State, delimiter: str) -> None:
    """Advance the quoting state over `text`, a piece of one record."""
    i, n = 0, len(text)
    if state.pending and n:
        state.pending = False
        if text[0] == QUOTE:  # a doubled quote: a character
            i = 1
        else:
            state.quoted, state.cell_start = False, False
    while i < n:
        if state.quoted:
            j = text.find(QUOTE, i)
            if j < 0:
                return
            if j + 1 == n:  # decided by the next piece
                state.pending = True
                return
            if text[j + 1] == QUOTE:  # a doubled quote: a character
                i = j + 2
                continue
            state.quoted, state.cell_start, i = False, False, j + 1
        elif state.cell_start and text[i] == QUOTE:
            state.quoted, state.cell_start, i = True, False, i + 1
        else:
            j = text.find(delimiter, i)
            if j < 0:
                state.cell_start = False
                return
            state.cell_start, i = True, j + 1


def _pieces(text: TextIO) -> Iterator[str]:
    """The stream in pieces of at most CHUNK characters, each a line or part of one; a line
    break split as \r and \n over two pieces is rejoined to the first."""
    held = ""
    while piece := text.readline(CHUNK):
        if held:
            if piece.startswith("\n"):
                held, piece = held + "\n", piece[1:]
            yield held
            held = ""
            if not piece:
                continue
        if piece.endswith("\r") and len(piece) == CHUNK:
            held = piece  # perhaps the first half of \r\n
            continue
        yield piece
    if held:
        yield held


def records(
    text: TextIO, delimiter: str, limit: int
) -> Iterator[tuple[int, str | TooLong | Unclosed]]:
    """(first line, record) for every record of `text` (see the module docstring)."""
    # Deliberately above any record kept: csv's own limit (128 KiB) would otherwise stop a
    # long cell midway, and the reader would go on inside it.
    csv.field_size_limit(max(csv.field_size_limit(), limit + 2))
    line = 1
    state, parts, size, start = _State(), [], 0, 1
    for piece in _pieces(text):
        _scan(piece, state, delimiter)
        size += len(piece)
        if size <= limit + 2:  # + the line break
            parts.append(piece)
        ends_line = piece.endswith(("\n", "\r"))
        if ends_line and not state.quoted:
            body = size - len(piece) + len(piece.rstrip("\r\n"))
            yield start, "".join(parts) if body <= limit else TooLong(body)
            state, parts, size, start = _State(), [], 0, line + 1
        if ends_line:
            line += 1
    if size:
        if state.quoted and not state.pending:
            yield start, Unclosed()
        else:
            yield start, "".join(parts) if size <= limit else TooLong(size)


def cells(record: str, delimiter: str) -> list[str]:
    """The cells of one record (empty for a blank line); csv.Error when it is malformed."""
    return next(csv.reader([record], delimiter=delimiter, strict=True), [])
