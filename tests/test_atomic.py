"""Outputs are replaced whole on success and left as they were on failure."""

from __future__ import annotations

import stat

import pytest

from llmops import atomic


def test_a_file_is_replaced_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / "sub" / "m.json"
    atomic.write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic.file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old\n" and [p.name for p in path.parent.iterdir()] == ["m.json"]
    with atomic.file(path) as tmp:
        tmp.write_text("new\n")
    assert path.read_text() == "new\n" and [p.name for p in path.parent.iterdir()] == ["m.json"]


def test_a_folder_is_swapped_in_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    with pytest.raises(RuntimeError), atomic.folder(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("crash")
    assert [p.name for p in out.iterdir()] == ["stale.txt"]
    with atomic.folder(out) as tmp:
        (tmp / "a.txt").write_text("whole")
    assert [p.name for p in out.iterdir()] == ["a.txt"]  # nothing stale mixed in
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries left
    atomic.remove(out)
    atomic.remove(out)
    assert not out.exists()
