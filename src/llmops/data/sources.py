"""Raw data files: which paths under the raw folder are read, and how their bytes decode.

`raw_files(raw)` walks the folder in sorted order (so rows come in the same order
everywhere), without following links to directories, and sorts every path into the files
to read and the paths not read, each with its reason, which the data report and the log
show: hidden entries, files of another type, links to directories, links that lead out of
the folder (a merged link to /proc/self/environ or ~/.aws must not become data), dangling
links, FIFOs, sockets and devices, files and folders that cannot be opened, archives other
than gzip, Parquet files that are not Parquet, and text in UTF-16 or UTF-32 without a
byte-order mark.

Formats by extension, after an optional `.gz`: JSON Lines (`.jsonl`, `.ndjson`), CSV
(`.csv`, `.tsv`) and Parquet (`.parquet`). Text files may be gzip-compressed (known by
their content, whatever the name says) and in UTF-8 (with or without a byte-order mark) or
in UTF-16/UTF-32 with a byte-order mark: `lines` and `text_stream` hand the readers the same
text either way, and `Encoding.note` says what was decoded. Reading is bounded by `Limits`:
a file that expands past `file_bytes` raises `TooLargeError`, and `lines` hands over a line
longer than `row_bytes` as its size alone (`LongLine`), never held in memory.

`display` shows a path safely and unambiguously in logs and reports: `\\xNN` for a byte of
the name that is not UTF-8, `\\xNN` or `\\uNNNN` for control, format and separator
characters, and `\\\\` for a backslash, so two different names never display the same.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from llmops.config.textcodec import bom_codec, wide_codec

if TYPE_CHECKING:
    from llmops.config.params import PrepParams

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
GZIP = b"\x1f\x8b"
# Compressed or archive formats that are recognised but not unpacked.
ARCHIVES = {
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
}
HEAD = 512  # bytes looked at to tell the encoding
MB = 1 << 20


class NotDataError(ValueError):
    """A file that is not read as data; the message is the reason shown for it."""


class TooLargeError(OSError):
    """A file that expands past Limits.file_bytes; the message says what to do."""


@dataclass(frozen=True)
class Limits:
    """How much of a raw file is read: in all once decompressed, and in one row."""

    file_bytes: int = 1024 * MB
    row_bytes: int = MB

    @classmethod
    def of(cls, prep: PrepParams) -> Limits:
        """The limits params.yaml sets (`prep.max_file_mb`, `prep.max_row_kb`)."""
        return cls(prep.max_file_mb * MB, prep.max_row_kb * 1024)

    def too_large(self) -> TooLargeError:
        return TooLargeError(
            f"the file expands past {self.file_bytes // MB} MB (prep.max_file_mb): split it "
            "or raise prep.max_file_mb"
        )


@dataclass(frozen=True)
class LongLine:
    """A line longer than Limits.row_bytes: its size (counted, not kept), in bytes, or in
    characters when the file is UTF-16/32 (read as text)."""

    size: int
    unit: str = "bytes"


def display(path: Path | str) -> str:
    """The path as printable text that tells every name apart (see the module docstring)."""
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    return "".join(_shown(c) for c in text) if not text.isprintable() or "\\" in text else text


def _shown(c: str) -> str:
    if c == "\\":
        return "\\\\"
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if c.isprintable():  # " " is; other spaces are not, they would look like one
        return c
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def data_format(path: Path) -> str | None:
    """jsonl, csv, tsv or parquet by the file's extension (after an optional .gz), else None."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes.pop()
    return FORMATS.get(suffixes[-1]) if suffixes else None


@dataclass(frozen=True)
class Encoding:
    """How a data file's bytes become text."""

    gzip: bool = False
    codec: str = "utf-8"  # utf-8, utf-8-sig, utf-16 or utf-32 (the last two with their BOM)

    @property
    def note(self) -> str:
        """What was decoded, for the data report; empty for plain UTF-8."""
        parts = ["gzip-compressed"] if self.gzip else []
        if self.codec in ("utf-16", "utf-32"):
            parts.append(f"{self.codec.upper()} with a byte-order mark")
        return ", ".join(parts)


@dataclass(frozen=True)
class RawFiles:
    """The paths under the raw folder: files read, each with how it decodes, in order, and
    paths not read with the reason."""

    read: dict[Path, Encoding]
    skipped: dict[str, str]  # display(path) -> why it was not read

    @property
    def notes(self) -> dict[str, str]:
        """display(path) -> what was decoded (gzip, UTF-16 ...), for files that needed it."""
        return {display(p.as_posix()): e.note for p, e in self.read.items() if e.note}


def raw_files(raw: Path) -> RawFiles:
    """Every file below `raw` to read, in sorted order, and every other path with why not."""
    if not raw.is_dir():
        raise FileNotFoundError(f"{display(raw)}: raw data folder not found")
    read, skipped = {}, {}
    root = raw.resolve()
    for path, problem in _walk(raw):
        try:
            if problem:
                raise NotDataError(problem)
            read[path] = _readable(path, root)
        except NotDataError as why:
            skipped[display(path.as_posix())] = str(why)
    return RawFiles(read, skipped)


def _walk(folder: Path) -> Iterator[tuple[Path, str]]:
    """(path, "") for every entry below `folder` but real directories, depth first in name
    order; hidden directories and links to directories are yielded, not entered; a folder
    that cannot be listed comes with the reason."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        yield folder, f"a folder that cannot be listed ({err.strerror or err})"
        return
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            yield from _walk(entry)
        else:
            yield entry, ""


def encoding_of(path: Path) -> Encoding:
    """How a data file decodes; NotDataError with the reason when it is not one."""
    fmt = data_format(path)
    if fmt is None:
        raise NotDataError(f"not a data file ({', '.join(FORMATS)}, optionally .gz)")
    return sniff(path, fmt)


def _readable(path: Path, root: Path) -> Encoding:
    """The encoding of a file prep reads; NotDataError with the reason for any other path.
    `root`: the raw folder's real path, which a link may not lead out of."""
    if path.name.startswith("."):
        raise NotDataError("hidden (the name starts with a dot)")
    if path.is_symlink() and not path.exists():
        raise NotDataError("a dangling symbolic link (its target does not exist)")
    if path.is_symlink() and path.is_dir():
        raise NotDataError("a symbolic link to a directory (not followed; link or copy the files)")
    if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
        raise NotDataError(
            "a symbolic link to a file outside the raw data folder (not followed; copy the file in)"
        )
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise NotDataError(f"cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise NotDataError(f"{_kind(mode)}, not a regular file")
    return encoding_of(path)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def sniff(path: Path, fmt: str) -> Encoding:
    """Tell compression and text encoding from the first bytes; NotDataError if unusable."""
    head = b""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD)
        compressed = head.startswith(GZIP)
        if compressed:
            with gzip.open(path, "rb") as f:
                head = f.read(HEAD)
    except (OSError, EOFError) as err:
        what = (
            "a gzip file that cannot be decompressed" if head.startswith(GZIP) else "cannot be read"
        )
        raise NotDataError(f"{what} ({getattr(err, 'strerror', None) or err})") from None
    for magic, kind in ARCHIVES.items():
        if head.startswith(magic):
            raise NotDataError(f"{kind}-compressed: unpack it (or compress it with gzip)")
    if fmt == "parquet":
        if compressed or not head.startswith(b"PAR1"):
            raise NotDataError("not a Parquet file (no PAR1 header; Parquet compresses itself)")
        return Encoding()
    codec = bom_codec(head)
    wide = None if codec else wide_codec(head)
    if wide:
        raise NotDataError(f"{wide} text without a byte-order mark: save it as UTF-8")
    return Encoding(compressed, codec or "utf-8")


class _Capped(io.RawIOBase):
    """A binary stream that raises TooLargeError once more than `limit` bytes were read."""

    def __init__(self, inner: BinaryIO, limits: Limits) -> None:
        self.inner, self.limits, self.count = inner, limits, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        # read1: what is there now. A truncated gzip stream raises EOFError on the next
        # read; the rows decompressed before it must reach the reader first.
        data = self.inner.read1(len(buffer))  # type: ignore[attr-defined]
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > self.limits.file_bytes:
            raise self.limits.too_large()
        return n

    def close(self) -> None:
        self.inner.close()
        super().close()


def _open(path: Path, encoding: Encoding, limits: Limits) -> BinaryIO:
    if not encoding.gzip and path.stat().st_size > limits.file_bytes:
        raise limits.too_large()  # known before reading a byte
    inner = gzip.open(path, "rb") if encoding.gzip else path.open("rb")  # noqa: SIM115
    return io.BufferedReader(_Capped(inner, limits))  # type: ignore[arg-type,return-value]


def lines(
    path: Path, encoding: Encoding, limits: Limits | None = None
) -> Iterator[bytes | LongLine]:
    """The file's lines as UTF-8 bytes, line endings kept, a UTF-8 BOM kept (readers drop
    it), a line longer than `limits.row_bytes` as its LongLine; raises OSError (TooLargeError
    too), EOFError or UnicodeDecodeError where the file stops being readable."""
    limits = limits or Limits()
    with _open(path, encoding, limits) as f:
        if encoding.codec in ("utf-8", "utf-8-sig"):
            yield from _bounded(f.readline, limits.row_bytes, (b"\n",))
            return
        text = io.TextIOWrapper(f, encoding=encoding.codec, newline="")
        for line in _bounded(text.readline, limits.row_bytes, ("\n", "\r")):
            if isinstance(line, LongLine):
                yield LongLine(line.size, "characters")
            else:
                yield line.encode("utf-8", "surrogatepass")


def _bounded(readline, limit: int, ends: tuple) -> Iterator:
    """Lines from `readline(size)`; one longer than `limit` (its line break aside) as its
    LongLine, read on in pieces and dropped."""
    strip = b"\r\n" if isinstance(ends[0], bytes) else "\r\n"
    while line := readline(limit + 2):  # room for "\r\n"
        whole = line.endswith(ends) or len(line) < limit + 2
        if whole and len(line.rstrip(strip)) <= limit:
            yield line
            continue
        size = len(line)
        while not line.endswith(ends) and (line := readline(1 << 16)):
            size += len(line)
        yield LongLine(size)


def text_stream(path: Path, encoding: Encoding, limits: Limits | None = None) -> io.TextIOWrapper:
    """The file as a text stream read as it goes (rows before damage are read first); bytes
    that are not UTF-8 become lone surrogates, so one bad row does not hide the others
    (UTF-16/32 raise UnicodeDecodeError where they break)."""
    codec = encoding.codec if encoding.codec in ("utf-16", "utf-32") else "utf-8-sig"
    errors = "strict" if codec != "utf-8-sig" else "surrogateescape"
    stream = _open(path, encoding, limits or Limits())
    return io.TextIOWrapper(stream, encoding=codec, errors=errors, newline="")
