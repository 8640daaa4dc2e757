"""Export lines, and the dirty lines planted among the clean ones.

Each dirty line has exactly one defect, named by its reason code (the codes the `prep`
stage quarantines under). All but the duplicates start from a fresh, valid, PII-free row,
so the defect is the only thing wrong with them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from examples.ticket_triage.templates import PRIORITIES
from examples.ticket_triage.tickets import PENDING_ID

FIELDS = ("id", "message", "category", "priority", "reply")  # the export's columns
# The prep stage's quarantine reasons these defects fall under (llmops.data.records.REASONS).
REASONS: tuple[str, ...] = (
    "invalid_utf8",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_label",
    "empty_field",
    "too_long",
    "duplicate",
    "near_duplicate",
)

# Stands in for the invalid bytes until the row is serialised; plain ASCII, so JSON keeps it.
_BAD_BYTES_MARK = "<<BAD-BYTES>>"
_BAD_BYTES = (b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\x80")
_BARE_TEXT = (
    "--- end of export page ---",
    "customer called back, see phone notes",
    "<html><body>Export failed</body></html>",
    "#N/A",
    "ticket forwarded to billing team",
)
_UNKNOWN_CATEGORIES = ("misc", "Billing Dept", "general", "sales", "other")
_UNKNOWN_PRIORITIES = ("critical", "P1", "normal", "highest", "asap")
_BLANK_MESSAGES = ("", " ", "   ", "\n", " \t \n")
_LOG_EVENTS = (
    "ERROR checkout: payment gateway timed out",
    "WARN session: token refresh failed, retrying",
    "INFO sync: device handshake started",
    "ERROR render: null reference in CartView",
    "at com.shop.app.Checkout.submit(Checkout.java)",
    "DEBUG cache: miss for key user-profile",
)


def dump(row: object) -> bytes:
    """One JSON value as UTF-8 bytes, without the newline."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Line:
    """One line of an export: a JSON value, how to serialise it, and its defect if any."""

    row: object
    reason: str | None = None
    render: Callable[[object], bytes] = dump


def _invalid_utf8(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    message = base["message"]
    cut = message.find(" ", len(message) // 2) + 1  # just after a space, or at the start
    row = dict(base, message=message[:cut] + _BAD_BYTES_MARK + message[cut:])
    bad = _BAD_BYTES[variant % len(_BAD_BYTES)]
    return Line(row, "invalid_utf8", lambda r: dump(r).replace(_BAD_BYTES_MARK.encode(), bad))


def _malformed_json(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    def text(r: object) -> str:
        return json.dumps(r, ensure_ascii=False)

    renders: tuple[Callable[[object], bytes], ...] = (
        # Cut the str, not the bytes, so the line stays valid UTF-8: one defect only.
        lambda r: text(r)[: len(text(r)) // 2].encode("utf-8"),
        lambda r: (text(r)[:-1] + ", }").encode("utf-8"),
        lambda r: repr(r).encode("utf-8"),  # Python dict syntax: single quotes
        lambda r: ("{" + text(r)).encode("utf-8"),
        lambda r: (text(r) + "}").encode("utf-8"),
    )
    if variant % 6 == 5:
        bare = rng.choice(_BARE_TEXT)
        return Line(bare, "malformed_json", lambda r: str(r).encode("utf-8"))
    return Line(dict(base), "malformed_json", renders[variant % 6])


def _not_an_object(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    values: tuple[object, ...] = (
        [base["message"], base["category"], base["priority"]],
        base["message"],
        rng.randint(1, 99999),
        None,
        True,
    )
    return Line(values[variant % len(values)], "not_an_object")


def _missing_field(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    field = FIELDS[variant % len(FIELDS)]
    return Line({k: v for k, v in base.items() if k != field}, "missing_field")


def _wrong_type(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    changes: tuple[dict[str, object], ...] = (
        {"priority": PRIORITIES.index(base["priority"]) + 1},
        {"message": [base["message"]]},
        {"reply": None},
        {"id": rng.randint(1, 9999) + 0.5},  # ids are strings; a float id is a bad export
        {"category": [base["category"]]},
    )
    return Line(dict(base, **changes[variant % len(changes)]), "wrong_type")


def _unknown_label(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    if variant % 2:
        return Line(dict(base, priority=rng.choice(_UNKNOWN_PRIORITIES)), "unknown_label")
    return Line(dict(base, category=rng.choice(_UNKNOWN_CATEGORIES)), "unknown_label")


def _empty_message(rng: random.Random, base: dict[str, str], variant: int) -> Line:
    return Line(dict(base, message=_BLANK_MESSAGES[variant % len(_BLANK_MESSAGES)]), "empty_field")


def too_long(rng: random.Random, base: dict[str, str], max_chars: int) -> Line:
    """The base message with a pasted log that takes it 500-4000 chars past `max_chars`."""
    target = max_chars + rng.randint(500, 4000)
    lines = [base["message"], "Here is what the app log says:"]
    size = sum(len(line) + 1 for line in lines)
    while size <= target:
        lines.append(f"{rng.choice(_LOG_EVENTS)} (attempt {rng.randint(1, 9)})")
        size += len(lines[-1]) + 1
    return Line(dict(base, message="\n".join(lines)), "too_long")


def near_duplicate(rng: random.Random, original: dict[str, str]) -> Line:
    """A copy whose message differs from the original's only in case and whitespace."""
    message = original["message"]
    # A case change is always part of it: whitespace alone may vanish in the consumer's
    # normalisation and turn the row into an exact duplicate.
    cased = [m for m in (message.lower(), message.upper(), message.swapcase()) if m != message]
    changed = rng.choice(cased)
    if rng.random() < 0.5 and " " in changed:
        spaces = [i for i, ch in enumerate(changed) if ch == " "]
        i = rng.choice(spaces)
        changed = changed[:i] + rng.choice(("  ", "\t", "\n", "   ")) + changed[i + 1 :]
    return Line(dict(original, id=PENDING_ID, message=changed), "near_duplicate")


def duplicate(original: dict[str, str]) -> Line:
    """An exact copy of the original row under a new id."""
    return Line(dict(original, id=PENDING_ID), "duplicate")


BUILDERS: dict[str, Callable[[random.Random, dict[str, str], int], Line]] = {
    "invalid_utf8": _invalid_utf8,
    "malformed_json": _malformed_json,
    "not_an_object": _not_an_object,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_label": _unknown_label,
    "empty_field": _empty_message,
}
