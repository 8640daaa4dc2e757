"""Reading a window of the service's logs back: the local folder and an object store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import fsspec
import pytest

from llmops.watch.logs import Reading, days, files, read

T0 = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)


def line(minutes: float, request_id: str) -> str:
    stamp = (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    return json.dumps({"time": stamp, "request_id": request_id, "status": 200}) + "\n"


def test_a_window_reads_only_its_days_and_its_lines_in_order(tmp_path):
    (tmp_path / "requests-2026-12-04.jsonl").write_text(line(-24 * 60, "old"))
    (tmp_path / "requests-2026-12-05.jsonl").write_text(line(0, "a") + line(30, "b"))
    (tmp_path / "requests-2026-12-06.jsonl").write_text(line(61, "c"))
    (tmp_path / "requests-2026-12-06.1.jsonl").write_text(line(90, "d") + line(200, "late"))
    (tmp_path / "feedback-2026-12-05.jsonl").write_text(line(10, "feedback"))
    since, until = T0 + timedelta(minutes=15), T0 + timedelta(minutes=120)
    got = [x["request_id"] for x in read(str(tmp_path), "requests", since, until)]
    assert got == ["b", "c", "d"]
    assert [p.rsplit("/", 1)[1] for p in files(str(tmp_path), "requests", since, until)] == [
        "requests-2026-12-05.jsonl", "requests-2026-12-06.jsonl", "requests-2026-12-06.1.jsonl"
    ]  # fmt: skip
    assert days(since, until) == ["2026-12-05", "2026-12-06"]


def test_lines_a_crash_cut_short_are_counted_not_fatal(tmp_path):
    text = line(0, "a") + '{"time": "2026-12-05T23:01' + "\n" + '{"no": "time"}\n' + line(2, "b")
    (tmp_path / "requests-2026-12-05.jsonl").write_text(text)
    reading = Reading()
    got = list(read(str(tmp_path), "requests", T0, T0 + timedelta(hours=1), reading))
    assert [x["request_id"] for x in got] == ["a", "b"]
    assert reading.skipped == {"not JSON": 1, "no valid time": 1}


def test_an_object_store_in_the_sinks_layout_reads_the_same():
    fs = fsspec.filesystem("memory")
    fs.pipe("/logs-test/requests/2026-12-05/20261205T230000-host-1-0.jsonl", line(0, "a").encode())
    fs.pipe("/logs-test/requests/2026-12-06/20261206T000100-host-1-1.jsonl", line(61, "b").encode())
    fs.pipe("/logs-test/feedback/2026-12-05/20261205T230000-host-1-0.jsonl", line(5, "f").encode())
    got = read("memory://logs-test", "requests", T0, T0 + timedelta(hours=3))
    assert [x["request_id"] for x in got] == ["a", "b"]
    got = read("memory://logs-test", "feedback", T0, T0 + timedelta(hours=3))
    assert [x["request_id"] for x in got] == ["f"]


def test_an_unknown_kind_is_refused_naming_the_kinds(tmp_path):
    with pytest.raises(ValueError, match="log kind 'answers': expected one of requests, feedback"):
        list(read(str(tmp_path), "answers", T0, T0))
