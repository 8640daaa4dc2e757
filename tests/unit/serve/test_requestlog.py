"""The service's request log: lines escaped rather than lost, files rotated by size and
retained by age and size, and feedback lookups answered from memory (read back at start)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from llmops.config.params import LogsParams
from llmops.serve.requestlog import FEEDBACK, REQUESTS, RequestLog

PARAMS = LogsParams(file_mb=1, retain_days=30, retain_mb=3, refusals_per_s=10,
                    feedback_window=50, sink_batch=10, sink_flush_s=1.0,
                    sink_buffer=100)  # fmt: skip


def line(i: int, status: int = 200, pad: int = 0) -> dict:
    return {"request_id": f"r{i}", "status": status, "inputs": [{"text": "x" * pad}]}


def test_a_line_with_a_lone_surrogate_is_written_escaped_and_reads_back(tmp_path):
    log = RequestLog(tmp_path, PARAMS)
    log.feedback({"request_id": "r1", "comment": "bad \ud800 text"})
    (path,) = log.files(FEEDBACK)
    assert json.loads(path.read_text(encoding="utf-8"))["comment"] == "bad \ud800 text"


def test_files_rotate_at_the_size_limit_and_old_ones_are_pruned(tmp_path):
    log = RequestLog(tmp_path, PARAMS)
    for i in range(60):  # 60 lines of ~0.1 MB: 6 MB in files of at most 1 MB
        log.request(line(i, pad=100_000))
    files = log.files(REQUESTS)
    sizes = [p.stat().st_size for p in files]
    assert max(sizes) <= 1024 * 1024 and sum(sizes) <= 3 * 1024 * 1024  # retain_mb
    ids = [json.loads(x)["request_id"] for p in files for x in p.read_text().splitlines()]
    assert ids == [f"r{i}" for i in range(60 - len(ids), 60)]  # the newest kept, in order
    assert all(p.name.startswith("requests-") and p.suffix == ".jsonl" for p in files)


def test_request_logs_older_than_retain_days_are_deleted_feedback_is_kept(tmp_path):
    for kind in (REQUESTS, FEEDBACK):
        (tmp_path / f"{kind}-2020-01-01.jsonl").write_text(json.dumps(line(0)) + "\n")
    log = RequestLog(tmp_path, PARAMS)
    log.request(line(1))
    log.feedback({"request_id": "r1", "rating": 5})
    assert not (tmp_path / "requests-2020-01-01.jsonl").exists()
    assert (tmp_path / "feedback-2020-01-01.jsonl").exists()


def test_feedback_lookups_use_memory_read_back_at_start_within_the_window(tmp_path):
    log = RequestLog(tmp_path, PARAMS)
    for i in range(80):
        log.request(line(i, status=200 if i % 10 else 401))  # every tenth refused
    assert log.known("r79") and not log.known("r70")  # refused: no feedback on it
    restarted = RequestLog(tmp_path, PARAMS)
    answered = [f"r{i}" for i in range(80) if i % 10]
    assert [r for r in answered if restarted.known(r)] == answered[-50:]  # feedback_window
    for path in restarted.files(REQUESTS):  # lookups never read the disk again
        path.unlink()
    assert restarted.known("r79") and not restarted.known("never")


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_next_one_kept_whole(tmp_path):
    path = tmp_path / f"requests-{time.strftime('%Y-%m-%d', time.gmtime())}.jsonl"
    path.write_text(json.dumps(line(1)) + "\n" + '{"request_id": "r2", "sta')
    os.utime(path)
    log = RequestLog(tmp_path, PARAMS)
    assert log.known("r1") and not log.known("r2")
    log.request(line(3))
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["request_id"] == "r3"
    assert RequestLog(tmp_path, PARAMS).known("r3")  # after a restart too


def test_a_bucket_gives_its_rate_and_a_slow_rate_still_gives():
    from llmops.serve.context import Bucket

    now = [0.0]
    fast, slow, off = (Bucket(rate, clock=lambda: now[0]) for rate in (3, 0.5, 0))
    assert [fast.take() for _ in range(5)] == [True, True, True, False, False]
    assert slow.take() and not slow.take() and not off.take()
    now[0] = 2.0  # two seconds on: 6 tokens for the fast one (capped at 3), 1 for the slow
    assert sum(fast.take() for _ in range(5)) == 3 and slow.take() and not off.take()
