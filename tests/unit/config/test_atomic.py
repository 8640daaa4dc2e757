"""Outputs are replaced whole, together, on success and left as they were on failure."""

from __future__ import annotations

import os
import stat

import pytest

from llmops.config import atomic


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_file_is_replaced_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / "sub" / "m.json"
    atomic.write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic.file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old\n" and listing(path.parent) == ["m.json"]
    with atomic.file(path) as tmp:
        tmp.write_text("new\n")
    assert path.read_text() == "new\n" and listing(path.parent) == ["m.json"]


def test_outputs_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "m.json", "{}\n")
        with atomic.folder(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_several_outputs_are_swapped_in_together_or_not_at_all(tmp_path):
    out, metrics, gone = tmp_path / "out", tmp_path / "m.json", tmp_path / "stale"
    out.mkdir()
    (out / "old.txt").write_text("from an older run")
    metrics.write_text("old")
    gone.mkdir()
    with pytest.raises(RuntimeError), atomic.Outputs() as outs:
        (outs.folder(out) / "a.txt").write_text("new")
        outs.remove(gone)
        outs.file(metrics).write_text("new")
        raise RuntimeError("crash after writing everything")
    assert listing(out) == ["old.txt"] and metrics.read_text() == "old" and gone.exists()
    assert listing(tmp_path) == ["m.json", "out", "stale"]  # no temporaries left
    with atomic.Outputs() as outs:
        (outs.folder(out) / "a.txt").write_text("new")
        outs.remove(gone)
        outs.file(metrics).write_text("new")
    assert listing(out) == ["a.txt"] and metrics.read_text() == "new"  # nothing stale mixed in
    assert listing(tmp_path) == ["m.json", "out"]


def test_an_output_behind_a_symlink_is_written_where_the_link_points(tmp_path):
    (tmp_path / "big-disk" / "adapter").mkdir(parents=True)
    (tmp_path / "adapter").symlink_to(tmp_path / "big-disk" / "adapter")
    with atomic.folder(tmp_path / "adapter") as tmp:
        (tmp / "w.safetensors").write_text("w")
    assert (tmp_path / "adapter").is_symlink()
    assert listing(tmp_path / "big-disk" / "adapter") == ["w.safetensors"]
    assert listing(tmp_path / "big-disk") == ["adapter"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("kept")
    real = os.replace

    def refuse(src, dst):
        if os.fspath(dst) == os.fspath(out):
            raise OSError("device busy")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="device busy"), atomic.folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert listing(out) == ["old.txt"] and listing(tmp_path) == ["out"]
