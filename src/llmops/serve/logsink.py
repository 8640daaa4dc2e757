"""Ship the service's request and feedback logs to an object store, in batches.

    sink = LogSink(location(params.serve.log_uri), params.serve.logs, telemetry)  # or None
    log = RequestLog(Path("logs"), params.serve.logs, sink=sink)  # each line also to the sink
    log.close()                                                   # flushes it (bounded wait)

A container's disk goes with it, so every line `llmops.serve.requestlog` writes is also
handed to the sink, which ships it from a background thread: a request never waits on the
store and never fails because of it. A batch is one object of one kind and one UTC day,
`<uri>/<kind>/<YYYY-MM-DD>/<UTC stamp>-<host>-<pid>-<seq>.jsonl` (the stamp of its first
line), written once it holds `logs.sink_batch` lines or its oldest line has waited
`logs.sink_flush_s`; `llmops.watch.logs.read` reads this layout. Replicas never collide:
the host, pid and sequence number name the writer.

When the store cannot be written, the lines are kept (at most `logs.sink_buffer`) and the
batch is retried, with backoff, under the same name (a retry overwrites, never doubles).
With the buffer full, the OLDEST buffered lines are dropped (monitoring and harvest read
the latest window; the local folder log still holds them until retention) and counted in
`llmops_log_sink_dropped_lines`; the batch being retried is kept. An outage logs two lines,
never one per line or per retry: a warning when it starts, and one when the store is written
again naming the lines dropped meanwhile; lines still held when close() gives up are
counted as dropped and named. The URI is logged without credentials.

`serve.log_uri` is any fsspec URI; LLMOPS_LOG_URI in the environment overrides it ("" is
off). S3 credentials come from the standard AWS environment; AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL names a non-AWS endpoint (passed to s3fs explicitly).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmops.config.params import LogsParams
from llmops.config.tracking import safe_uri
from llmops.serve.telemetry import Telemetry

log = logging.getLogger(__name__)
ENV = "LLMOPS_LOG_URI"
KINDS = ("requests", "feedback")
BACKOFF = (1.0, 60.0)  # seconds before the first retry of a failed write; the longest wait
CLOSE_S = 10.0  # close() waits at most this long for the buffer to be written
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
SEQUENCE = itertools.count(1)  # batch numbers, process-wide: two sinks never share a name
# s3fs: one attempt per write (the sink retries, with its own backoff), never a long hang.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 1}}


def location(configured: str, environ: Mapping[str, str] = os.environ) -> str:
    """Where the logs go: LLMOPS_LOG_URI when set (a deployment's setting), else params."""
    return environ[ENV].strip() if ENV in environ else configured.strip()


def filesystem(uri: str, environ: Mapping[str, str] = os.environ) -> tuple[Any, str]:
    """The fsspec filesystem and root path of `uri`, or ValueError naming what is expected."""
    import fsspec

    if "://" not in uri:
        raise ValueError(
            f"log URI {safe_uri(uri)!r}: expected an fsspec URI like s3://bucket/prefix"
        )
    protocol, options = uri.split("://", 1)[0], {}
    if protocol in ("s3", "s3a"):
        options = {"config_kwargs": S3_CONFIG}
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        fs, root = fsspec.core.url_to_fs(uri, skip_instance_cache=True, **options)
    except (ImportError, ValueError) as err:
        raise ValueError(f"log URI {safe_uri(uri)!r}: {err}") from err
    if hasattr(fs, "retries"):
        fs.retries = 1  # s3fs retries some errors itself: the sink's backoff does it
    return fs, root.rstrip("/")


@dataclass
class Batch:
    """Lines of one kind and day, and the object they are written to."""

    kind: str
    path: str
    lines: list[bytes]


class LogSink:
    """A bounded buffer of log lines, written to the store by a background thread."""

    def __init__(
        self,
        uri: str,
        params: LogsParams,
        telemetry: Telemetry | None = None,
        backoff: tuple[float, float] = BACKOFF,
    ):
        self.uri, self.shown, self.params = uri, safe_uri(uri), params
        self.fs, self.root = filesystem(uri)
        self.telemetry = telemetry or Telemetry()
        self.backoff = backoff
        self.writer = f"{_host()}-{os.getpid()}"
        self._cond = threading.Condition()
        self._queues: dict[str, deque] = {k: deque() for k in KINDS}  # (monotonic, stamp, line)
        self._held = 0  # lines in the queues and in the batch being written
        self._batch: Batch | None = None
        self._failures = 0  # failed writes since the last good one
        self._dropped = 0  # lines dropped since the last log line that named them
        self._retry_at = 0.0
        self._deadline: float | None = None  # set by close()
        for kind in KINDS:  # each series on /metrics from the start, at 0
            self.telemetry.sink_written.labels(kind=kind)
            self.telemetry.sink_dropped.labels(kind=kind)
        self.telemetry.sink_buffered.set(0)
        self._thread = threading.Thread(target=self._run, name="llmops-log-sink", daemon=True)
        self._thread.start()

    def put(self, kind: str, stamp: datetime, line: bytes) -> None:
        """Buffer one JSON line (ending in a newline) of `kind` stamped `stamp` (UTC); never
        blocks on the store."""
        with self._cond:
            if self._deadline is not None:
                self._drop(kind)
                return
            if self._held >= self.params.sink_buffer and not self._drop_oldest():
                self._drop(kind)  # all held lines are the batch being retried: drop this one
                return
            queue = self._queues[kind]
            queue.append((time.monotonic(), stamp, line))
            self._held += 1
            self.telemetry.sink_buffered.set(self._held)
            if len(queue) in (1, self.params.sink_batch):
                self._cond.notify()

    @property
    def held(self) -> int:
        """Lines buffered, not yet written."""
        return self._held

    def close(self, timeout: float = CLOSE_S) -> None:
        """Write what is buffered, waiting at most `timeout` seconds; what is left then is
        counted as dropped and named in one warning."""
        with self._cond:
            if self._deadline is None:
                self._deadline = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        with self._cond:
            left = self._held
            if left:
                for kind in KINDS:
                    self._drop(kind, len(self._queues[kind]))
                if self._batch is not None:
                    self._drop(self._batch.kind, len(self._batch.lines))
                self._queues, self._batch, self._held = {k: deque() for k in KINDS}, None, 0
                self.telemetry.sink_buffered.set(0)
        if left:
            log.warning("log sink: closed with %d lines not written to %s", left, self.shown)

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            error = self._write(batch)
            with self._cond:
                if error:
                    self._failed(error)
                else:
                    self._written(batch)

    def _next(self) -> Batch | None:
        """The batch to write now (waiting until one is due), or None once closed."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._deadline is not None and now >= self._deadline:
                    return None
                if self._batch is not None and now >= self._retry_at:
                    return self._batch
                if self._batch is None and (kind := self._due(now)):
                    self._batch = self._cut(kind)
                    return self._batch
                if self._batch is None and self._deadline is not None:
                    return None  # closing, nothing left
                self._cond.wait(self._wait(now))

    def _due(self, now: float) -> str | None:
        """The kind with a batch to write (full, old enough, a finished day, or closing)
        whose oldest line is the oldest; None when neither has one."""
        due = []
        for kind, queue in self._queues.items():
            if not queue:
                continue
            head, last = queue[0], queue[-1]
            if (
                len(queue) >= self.params.sink_batch
                or now - head[0] >= self.params.sink_flush_s
                or head[1].date() != last[1].date()
                or self._deadline is not None
            ):
                due.append((head[0], kind))
        return min(due)[1] if due else None

    def _wait(self, now: float) -> float | None:
        """Seconds until something may be due (None: until notified): the retry of the
        batch being written, else the first queued line to reach `sink_flush_s`."""
        if self._batch is not None:
            times = [self._retry_at]
        else:
            times = [q[0][0] + self.params.sink_flush_s for q in self._queues.values() if q]
        if self._deadline is not None:
            times.append(self._deadline)
        return max(0.0, min(times) - now) if times else None

    def _cut(self, kind: str) -> Batch:
        """The next batch of `kind`: its oldest lines of one day, at most `sink_batch`."""
        queue, lines = self._queues[kind], []
        _, first, _ = queue[0]
        while queue and len(lines) < self.params.sink_batch and queue[0][1].date() == first.date():
            lines.append(queue.popleft()[2])
        stamp = f"{first:%Y%m%dT%H%M%S}{first.microsecond // 1000:03d}Z"
        name = f"{stamp}-{self.writer}-{next(SEQUENCE):06d}.jsonl"
        return Batch(kind, f"{self.root}/{kind}/{first:%Y-%m-%d}/{name}", lines)

    def _write(self, batch: Batch) -> str:
        """Write one object; "" when written, else what went wrong (no secrets)."""
        try:
            self.fs.pipe_file(batch.path, b"".join(batch.lines))
        except Exception as err:  # whatever the store says: keep the lines, retry
            return f"{type(err).__name__}: {_scrub(str(err))[:300]}"
        return ""

    def _written(self, batch: Batch) -> None:
        if self._batch is not batch:  # close() gave up on it and counted it as dropped
            return
        self._batch = None
        self._held -= len(batch.lines)
        self.telemetry.sink_written.labels(kind=batch.kind).inc(len(batch.lines))
        self.telemetry.sink_buffered.set(self._held)
        if self._failures or self._dropped:
            log.log(
                logging.WARNING if self._dropped else logging.INFO,
                "log sink: %s written again after %d failed writes; %d lines dropped meanwhile "
                "(the buffer holds %d lines)",
                self.shown,
                self._failures,
                self._dropped,
                self.params.sink_buffer,
            )
        self._failures = self._dropped = 0

    def _failed(self, error: str) -> None:
        self.telemetry.sink_failures.inc()
        if self._batch is None:  # close() gave up on it
            return
        if not self._failures:
            log.warning(
                "log sink: cannot write to %s (%s); keeping up to %d lines and retrying",
                self.shown,
                error,
                self.params.sink_buffer,
            )
        self._failures += 1
        first, most = self.backoff
        self._retry_at = time.monotonic() + min(most, first * 2 ** (self._failures - 1))

    def _drop_oldest(self) -> bool:
        """Drop the oldest queued line (not one of the batch being written), if any."""
        queued = [(q[0][0], kind) for kind, q in self._queues.items() if q]
        if not queued:
            return False
        kind = min(queued)[1]
        self._queues[kind].popleft()
        self._held -= 1
        self._drop(kind)
        return True

    def _drop(self, kind: str, lines: int = 1) -> None:
        if lines:
            self._dropped += lines
            self.telemetry.sink_dropped.labels(kind=kind).inc(lines)


def _host() -> str:
    """This machine's name, safe in an object name."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"


def _scrub(text: str) -> str:
    """An error message without credentials: URL user info and the AWS secrets' values."""
    text = re.sub(r"(\w+://)[^/@\s]*@", r"\1", text)
    for name in SECRETS:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
