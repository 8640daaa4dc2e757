"""Raw records: read every file under the raw folder and validate each line as a ticket.

The raw schema (one JSON object per line, UTF-8; other keys are ignored):

    id        string, non-empty       the export's ticket id, kept for tracing
    message   string                  the customer's message
    category  string in task.categories
    priority  string in task.priorities
    reply     string                  the first reply a good agent sent
    split     optional "train"|"val"|"test": pins the row to a split (held-out test sets)

Each line becomes a `Ticket` or a `Rejection` with its file, line number and reason.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmops.params import PrepParams, TaskParams
from llmops.redact import INVISIBLE

FIELDS = ("id", "message", "category", "priority", "reply")
SPLITS = ("train", "val", "test")
# Every reason a row can be rejected for, in the order the checks run.
REASONS = (
    "invalid_utf8", "malformed_json", "not_an_object", "missing_field", "wrong_type",
    "unknown_label", "invalid_split", "empty_message", "empty_reply", "too_long",
    "duplicate", "near_duplicate",
)  # fmt: skip
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # control characters that are not whitespace
SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Ticket:
    """A valid, normalised row; `where` is "file:line" for tracing."""

    id: str
    message: str
    category: str
    priority: str
    reply: str
    pin: str | None
    where: str

    def record(self) -> dict[str, str]:
        """The row as written to the prepared splits."""
        return {
            "id": self.id, "message": self.message, "category": self.category,
            "priority": self.priority, "reply": self.reply, "source": self.where,
        }  # fmt: skip


@dataclass(frozen=True)
class Rejection:
    """A row that is not used, with why; `raw` is the line as read (redacted before storing)."""

    where: str
    reason: str
    detail: str
    raw: str


def raw_files(raw: Path) -> list[Path]:
    """Every non-hidden file below `raw`, sorted, so row order is the same everywhere."""
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: raw data folder not found")
    return sorted(
        p for p in raw.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(raw).parts)
    )  # fmt: skip


def read_lines(path: Path, name: str) -> Iterator[tuple[str, bytes]]:
    """Yield ("name:line", bytes) for each non-blank line; blank lines are not rows."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip(b"\r\n")
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
            if line.strip():
                yield f"{name}:{number}", line


def normalize(text: str, form: str) -> str:
    """Unicode normal form, control characters as spaces, invisible ones (zero-width space,
    soft hyphen, direction marks) removed, whitespace collapsed to single spaces, stripped."""
    text = INVISIBLE.sub("", unicodedata.normalize(form, text))
    return SPACE.sub(" ", CONTROL.sub(" ", text)).strip()


def dedupe_key(message: str) -> str:
    """Key under which two messages count as the same (case and whitespace ignored)."""
    return SPACE.sub(" ", message.casefold()).strip()


def parse_line(where: str, line: bytes, task: TaskParams, prep: PrepParams) -> Ticket | Rejection:
    """Decode, parse and validate one raw line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raw = line.decode("utf-8", "backslashreplace")
        return Rejection(where, "invalid_utf8", f"byte {line[err.start]:#04x} at {err.start}", raw)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return Rejection(where, "malformed_json", f"{err.msg} at column {err.colno}", text)
    except (ValueError, RecursionError) as err:  # a 5000-digit number, nesting 100k deep
        return Rejection(where, "malformed_json", f"{type(err).__name__}: {err}"[:200], text)
    if not isinstance(obj, dict):
        return Rejection(where, "not_an_object", f"a JSON {_json_type(obj)}", text)
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:  # "\ud800" escapes decode to lone surrogates
        return Rejection(where, "invalid_utf8", f"lone surrogate {err.object[err.start]!a}", text)
    problem = _check_fields(obj, task)
    if problem:
        return Rejection(where, *problem, text)
    message = normalize(obj["message"], prep.unicode_form)
    reply = normalize(obj["reply"], prep.unicode_form)
    if not message:
        return Rejection(where, "empty_message", "message is empty after normalisation", text)
    if not reply:
        return Rejection(where, "empty_reply", "reply is empty after normalisation", text)
    for field, value, limit in (
        ("message", message, prep.max_message_chars),
        ("reply", reply, prep.max_reply_chars),
    ):
        if len(value) > limit:
            return Rejection(where, "too_long", f"{field}: {len(value)} chars > {limit}", text)
    return Ticket(
        obj["id"].strip(), message, obj["category"], obj["priority"], reply, obj.get("split"), where
    )


def _check_fields(obj: dict, task: TaskParams) -> tuple[str, str] | None:
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        return "missing_field", f"missing {', '.join(missing)}"
    for field in FIELDS:
        if not isinstance(obj[field], str):
            return "wrong_type", f"{field}: expected a string, got {_json_type(obj[field])}"
    if not obj["id"].strip():
        return "wrong_type", "id: expected a non-empty string, got an empty one"
    for field, allowed in (("category", task.categories), ("priority", task.priorities)):
        if obj[field] not in allowed:
            return "unknown_label", f"{field}: {obj[field]!r} not in {list(allowed)}"
    if obj.get("split") is not None and obj["split"] not in SPLITS:
        return "invalid_split", f"split: {obj['split']!r} not in {list(SPLITS)} or null"
    return None


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")
