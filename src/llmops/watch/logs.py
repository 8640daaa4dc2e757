"""The service's request and feedback logs, read back for a time window.

    for line in read("logs", "requests", since, until): ...          # the local folder
    for line in read("s3://bucket/llmops", "feedback", since, until): ...   # an object store

Two layouts, as the service writes them (`llmops.serve.requestlog`, `llmops.serve.logsink`):
a local folder of `requests-2026-12-06.jsonl` (and `.1.jsonl`, ... parts), and an object
store (any fsspec URI: s3://, gs://, memory://) of `requests/2026-12-06/<batch>.jsonl`
objects, one per batch the sink wrote. Files are chosen by the day in their name, then
each line by its own `time`, so a window reads only the days it covers. A line that is not
a JSON object with a valid `time` (one a crash cut short) is counted in `Reading.skipped`,
never fatal. Standard library and fsspec only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

KINDS = ("requests", "feedback")
LOCAL = re.compile(r"(?P<kind>[a-z]+)-(?P<day>\d{4}-\d{2}-\d{2})(?:\.\d+)?\.jsonl")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Reading:
    """What a read found: the files read and the lines left out (per reason)."""

    files: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def location(given: str | None, configured: str, default: str = "logs") -> str:
    """Where to read the logs: `given` (--logs), else LLMOPS_LOG_URI, else `configured`
    (params.yaml serve.log_uri), else `default` (the local folder)."""
    return given or os.environ.get("LLMOPS_LOG_URI") or configured or default


def is_remote(location: str) -> bool:
    """Whether `location` is an fsspec URI (s3://...) rather than a local folder."""
    return "://" in location and not location.startswith("file://")


def days(since: datetime, until: datetime) -> list[str]:
    """The UTC days a window touches, as YYYY-MM-DD."""
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def files(location: str, kind: str, since: datetime, until: datetime) -> list[str]:
    """The log files (paths or URIs) of `kind` whose day falls in the window, in order."""
    if kind not in KINDS:
        raise ValueError(f"log kind {kind!r}: expected one of {', '.join(KINDS)}")
    wanted = set(days(since, until))
    if not is_remote(location):
        folder = Path(location.removeprefix("file://"))
        found = []
        for path in folder.glob(f"{kind}-*.jsonl") if folder.is_dir() else ():
            match = LOCAL.fullmatch(path.name)
            if match and match["kind"] == kind and match["day"] in wanted:
                part = path.name.removesuffix(".jsonl").split(".")
                found.append((match["day"], int(part[1]) if len(part) > 1 else 0, str(path)))
        return [path for *_, path in sorted(found)]
    import fsspec

    fs, root = fsspec.core.url_to_fs(location)
    protocol = location.split("://", 1)[0]
    found = []
    for day in sorted(wanted):
        folder = f"{root.rstrip('/')}/{kind}/{day}"
        if fs.exists(folder):
            names = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".jsonl"))
            found += [f"{protocol}://{p}" if "://" not in p else p for p in names]
    return found


def read(
    location: str, kind: str, since: datetime, until: datetime, reading: Reading | None = None
) -> Iterator[dict]:
    """The lines of `kind` whose `time` is in [since, until), file by file, in order."""
    reading = reading if reading is not None else Reading()
    for name in files(location, kind, since, until):
        reading.files.append(name)
        for text in _lines(name):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                reading.skip("not JSON")
                continue
            stamp = _time(line)
            if stamp is None:
                reading.skip("no valid time")
            elif since <= stamp < until:
                yield line


def _lines(name: str) -> Iterator[str]:
    """A file's lines, streamed (a log file may hold tens of MB)."""
    if is_remote(name):
        import fsspec

        with fsspec.open(name, "rt", encoding="utf-8", errors="replace") as fh:
            yield from fh
    else:
        with Path(name.removeprefix("file://")).open(encoding="utf-8", errors="replace") as fh:
            yield from fh


def _time(line: object) -> datetime | None:
    if not isinstance(line, dict) or not isinstance(line.get("time"), str):
        return None
    try:
        stamp = datetime.fromisoformat(line["time"])
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def window(hours: float, until: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `hours` up to `until` (now), as a [since, until) pair in UTC."""
    end = until or datetime.now(UTC)
    return end - timedelta(hours=hours), end


def parse_day(text: str) -> date:
    """A YYYY-MM-DD day, or ValueError naming what was expected."""
    if not DAY.fullmatch(text):
        raise ValueError(f"{text!r}: expected a day as YYYY-MM-DD")
    return date.fromisoformat(text)
