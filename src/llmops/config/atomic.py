"""Outputs written whole or not at all.

A stage builds each output file or folder under a hidden temporary name beside its place
and renames it into place once everything is written. On an error every temporary is
removed and the old outputs, if any, stay as they were: a reader never sees half a file,
and a stage that fails midway leaves neither half-written outputs nor a mix of two runs.
A rename is atomic within one file system; the temporary sits in the output's own folder
(behind a symbolic link, in the folder the link points to), so it always is.

    with atomic.Outputs() as out:           # several outputs of one run, renamed together
        write_splits(out.folder(Path("data/prepared")))
        out.file(Path("metrics/prep.json")).write_text(...)

`file`, `write_text` and `folder` do the same for one output.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType


class Outputs:
    """Outputs of one run: temporaries handed out by `file`/`folder`, renamed into place
    together when the `with` block ends without an error, all removed when it raises."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path | None, Path]] = []  # (temporary or None, target)

    def file(self, path: Path) -> Path:
        """A new empty temporary file that will replace `path`."""
        target = _target(path)
        tmp = _sibling(target)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies
        self._pending.append((tmp, target))
        return tmp

    def folder(self, path: Path) -> Path:
        """A new empty temporary folder that will replace `path` and all it holds."""
        target = _target(path)
        tmp = _sibling(target)
        tmp.mkdir()
        self._pending.append((tmp, target))
        return tmp

    def remove(self, path: Path) -> None:
        """Remove `path` (a file or folder) with the others, e.g. a stale output."""
        self._pending.append((None, _target(path)))

    def __enter__(self) -> Outputs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                for tmp, target in self._pending:
                    _swap(tmp, target)
        finally:
            for tmp, _ in self._pending:
                if tmp is not None:
                    _delete(tmp)


def _target(path: Path) -> Path:
    """Where the output really goes: behind a symbolic link, its target (made absolute)."""
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}")


def _swap(tmp: Path | None, target: Path) -> None:
    """Put `tmp` where `target` is; a folder that was there is kept until the new one is in,
    and put back if that fails."""
    old = None
    if target.is_dir():
        old = target.rename(_sibling(target))
    try:
        if tmp is not None:
            os.replace(tmp, target)
        elif target.exists():
            target.unlink()
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old)


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` when the block succeeds."""
    with Outputs() as out:
        yield out.file(path)


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; it replaces `path` (and all it held) on success."""
    with Outputs() as out:
        yield out.folder(path)
