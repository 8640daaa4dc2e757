"""Outputs written whole or not at all.

A stage builds a file or folder under a hidden temporary name beside its place and renames
it into place when it is complete (`file`, `folder`); on an error the temporary is removed
and the old output, if any, is left as it was. A rename within one folder is atomic, so a
reader never sees half of an output, and a stage that fails midway leaves nothing
half-written.

    with atomic.folder(Path("data/prepared")) as tmp:
        (tmp / "train.jsonl").write_text(...)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; it replaces `path` (and all it held) on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; an output folder is not
        old = None
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            old = path.rename(path.with_name(f"{tmp.name}.old"))
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove(path: Path) -> None:
    """Remove an output, file or folder, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
