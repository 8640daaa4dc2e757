"""The service's request and feedback logs, as JSON Lines files that monitoring reads.

    log = RequestLog(Path("logs"), params.serve.logs)
    log.request({"request_id": ..., "status": 200, ...})   # logs/requests-2026-11-29.jsonl
    log.feedback({"request_id": ..., "rating": 5})          # logs/feedback-2026-11-29.jsonl
    log.known(request_id)                                   # may feedback name it?
    log.close()                                             # at shutdown: flush the sink

One line per request, appended and flushed as it is written; one file per UTC day, and
the day's next file (`requests-2026-11-29.1.jsonl`, ...) once one reaches `logs.file_mb`.
Whenever a request log file is opened, request logs older than `logs.retain_days`, and the
oldest past `logs.retain_mb` in all, are deleted; feedback files are kept (people wrote
them: harvest them). Feedback may name one of the latest `logs.feedback_window` answered
requests (status 200): their ids are held in memory, read back from the files at start,
so no lookup reads the disk. Writing never fails a request: text UTF-8 cannot encode (a
lone surrogate) is written escaped, and a line a crash cut short is ended before the next.

Given a sink (`llmops.serve.logsink`, for `serve.log_uri`), every line written is also
handed to it, to be shipped to an object store in the background; this folder stays the
log that feedback lookups and the sink's spool rely on.

The caller passes inputs after cleaning and PII redaction, and outputs redacted the same
way: this module writes what it is given, so nothing unredacted may be handed to it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from llmops.config.params import LogsParams
from llmops.serve.logsink import LogSink

log = logging.getLogger(__name__)
REQUESTS, FEEDBACK = "requests", "feedback"
# requests-2026-11-29.jsonl, requests-2026-11-29.3.jsonl: the kind, the day, the part.
NAME = re.compile(r"(?P<kind>[a-z]+)-(?P<day>\d{4}-\d{2}-\d{2})(?:\.(?P<part>\d+))?\.jsonl")
MB = 1024 * 1024


class RequestLog:
    """Appends request and feedback lines; remembers the request ids feedback may name."""

    def __init__(self, folder: Path, params: LogsParams, sink: LogSink | None = None):
        self.folder, self.params, self.sink = folder, params, sink
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, Path, int]] = {}  # kind: (day, file written, size)
        self._ids: OrderedDict[str, None] = OrderedDict()
        for request_id in reversed(self._latest_ids()):
            self._note(request_id)

    def request(self, line: dict) -> None:
        self._append(REQUESTS, line)
        if line.get("status") == 200:
            with self._lock:
                self._note(line["request_id"])

    def feedback(self, line: dict) -> None:
        self._append(FEEDBACK, line)

    def known(self, request_id: str) -> bool:
        """Whether `request_id` is one of the latest `feedback_window` answered requests."""
        return request_id in self._ids

    def close(self) -> None:
        """Flush the sink, if any (a bounded wait); the folder needs no closing."""
        if self.sink is not None:
            self.sink.close()

    def files(self, kind: str) -> list[Path]:
        """The log files of `kind`, oldest first."""
        return [path for *_, path in self._parts(kind)]

    def _parts(self, kind: str) -> list[tuple[str, int, Path]]:
        """(day, part, path) of each log file of `kind`, oldest first."""
        found = [(NAME.fullmatch(p.name), p) for p in self.folder.glob(f"{kind}-*.jsonl")]
        keyed = [(m["day"], int(m["part"] or 0), p) for m, p in found if m and m["kind"] == kind]
        return sorted(keyed)

    def _note(self, request_id: str) -> None:
        self._ids[request_id] = None
        self._ids.move_to_end(request_id)
        while len(self._ids) > self.params.feedback_window:
            self._ids.popitem(last=False)

    def _latest_ids(self) -> list[str]:
        """The ids of the latest answered requests on disk, newest first (read once, at start)."""
        ids: list[str] = []
        for path in reversed(self.files(REQUESTS)):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for text in reversed(lines):
                if '"status": 200' not in text:  # refusals and the like: not parsed at all
                    continue
                line = _parsed(text)
                if line.get("status") == 200 and isinstance(line.get("request_id"), str):
                    ids.append(line["request_id"])
                    if len(ids) >= self.params.feedback_window:
                        return ids
        return ids

    def _append(self, kind: str, line: dict) -> None:
        stamp = datetime.fromtimestamp(time.time(), UTC)
        record = {"time": stamp.isoformat(timespec="milliseconds"), **line}
        text = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        data = text.encode("utf-8", "backslashreplace")  # a lone surrogate, escaped
        with self._lock:
            day, path, size = self._file(kind, f"{stamp:%Y-%m-%d}", len(data))
            with path.open("ab") as fh:
                fh.write(data)
            self._open[kind] = (day, path, size + len(data))
            if self.sink is not None:  # a buffer append: never waits on the store
                self.sink.put(kind, stamp, data)

    def _file(self, kind: str, day: str, adding: int) -> tuple[str, Path, int]:
        """The day, file and size the next line of `kind` goes to: today's file, or a new
        one when the day changed or the current one would pass `file_mb` (and then old logs
        are pruned)."""
        limit = self.params.file_mb * MB
        if kind in self._open:
            opened, path, size = self._open[kind]
            if opened == day and (size + adding <= limit or size == 0):
                return self._open[kind]
        self.folder.mkdir(parents=True, exist_ok=True)
        today = [(part, p) for d, part, p in self._parts(kind) if d == day]
        part, path = today[-1] if today else (0, self.folder / f"{kind}-{day}.jsonl")
        size = path.stat().st_size if path.exists() else 0
        if size and size + adding > limit:
            path, size = self.folder / f"{kind}-{day}.{part + 1}.jsonl", 0
        if size and not _ends_a_line(path):  # a line cut short by a crash: end it first
            with path.open("ab") as fh:
                fh.write(b"\n")
            size += 1
        self._open[kind] = (day, path, size)
        if kind == REQUESTS:
            self._prune(keep=path)
        return self._open[kind]

    def _prune(self, keep: Path) -> None:
        """Delete request logs older than `retain_days`, then the oldest until the rest and
        the open file `keep`, once full, fit in `retain_mb`."""
        today, files = datetime.now(UTC).date(), []
        for day, _, path in self._parts(REQUESTS):
            if path == keep:
                continue
            if (today - datetime.strptime(day, "%Y-%m-%d").date()).days > self.params.retain_days:
                _delete(path)
            else:
                files.append(path)
        sizes = {p: p.stat().st_size for p in files if p.exists()}
        total = sum(sizes.values()) + self.params.file_mb * MB  # the open file, once full
        for path in files:
            if total <= self.params.retain_mb * MB:
                break
            total -= sizes.get(path, 0)
            _delete(path)


def _delete(path: Path) -> None:
    log.info("request log retention: deleting %s", path.name)
    path.unlink(missing_ok=True)


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def _parsed(text: str) -> dict:
    """One log line, or {} for a line cut short (a crash mid-write)."""
    try:
        line = json.loads(text)
    except ValueError:
        return {}
    return line if isinstance(line, dict) else {}
