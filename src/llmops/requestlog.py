"""The service's request log and feedback, as JSON Lines files that monitoring reads.

    log = RequestLog(Path("logs"))
    log.request({"request_id": ..., "status": 200, ...})   # logs/requests-2026-11-29.jsonl
    log.feedback({"request_id": ..., "rating": 5})          # logs/feedback-2026-11-29.jsonl

One line per request, appended and flushed as it is written, one file per UTC day. The
caller passes inputs after cleaning and PII redaction, and outputs redacted the same way:
this module writes what it is given, so nothing unredacted may be handed to it.
`RequestLog.known(request_id)` says whether a request was logged (feedback must name one).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

REQUESTS, FEEDBACK = "requests", "feedback"


class RequestLog:
    """Appends request and feedback lines; remembers the request ids it has logged."""

    def __init__(self, folder: Path, remember: int = 100_000):
        self.folder = folder
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, None] = OrderedDict()  # the latest `remember` ids
        self._remember = remember

    def request(self, line: dict) -> None:
        self._append(REQUESTS, line)
        self._note(line["request_id"])

    def _note(self, request_id: str) -> None:
        self._ids[request_id] = None
        self._ids.move_to_end(request_id)
        while len(self._ids) > self._remember:
            self._ids.popitem(last=False)

    def feedback(self, line: dict) -> None:
        self._append(FEEDBACK, line)

    def known(self, request_id: str) -> bool:
        """Whether `request_id` is in the log (this process's, then the files on disk)."""
        if request_id in self._ids:
            return True
        needle = json.dumps(request_id)
        for path in sorted(self.folder.glob(f"{REQUESTS}-*.jsonl"), reverse=True):
            with path.open(encoding="utf-8", errors="replace") as fh:
                for text in fh:
                    if needle in text and _request_id(text) == request_id:
                        self._note(request_id)
                        return True
        return False

    def _append(self, kind: str, line: dict) -> None:
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC)
        record = {"time": stamp.isoformat(timespec="milliseconds"), **line}
        text = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        path = self.folder / f"{kind}-{stamp:%Y-%m-%d}.jsonl"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(text)


def _request_id(text: str) -> str | None:
    """The request id of a log line, or None for a line cut short (a crash mid-write)."""
    try:
        return json.loads(text).get("request_id")
    except ValueError:
        return None
