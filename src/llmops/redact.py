"""PII redaction: replace emails, phone numbers and card numbers with typed placeholders.

`redact("mail me at a@b.com", {"EMAIL"})` returns `("mail me at <EMAIL>", Counter(EMAIL=1))`.

Numbers are judged by shape, so the details a reply needs survive: order numbers
(`ORD-482913`, `#123456789`), amounts (`$1,299.99`), dates, IP addresses and versions stay.
- CARD: 13-19 digits written in groups of 4+ digits (4111 1111 1111 1111, 3782 822463
  10005), or as one run that passes the Luhn check.
- PHONE: 9-12 digits, or up to 15 with a `+`/`00` international prefix, in groups of 2+
  digits (a `+1` country code or `(0)` may be shorter), separated by spaces, dots, slashes
  or dashes, with an optional `x123`/`ext 123` extension. Years in a row are not a phone.
Two numbers side by side ("415-555-0132 4111 1111 1111 1111") are told apart. These are
heuristics: an ambiguous run such as "12345 67890" counts as a phone, erring on privacy.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from typing import Any

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "CARD": "<CARD>"}
KINDS = tuple(PLACEHOLDERS)

# Invisible format characters that could hide PII from the patterns: soft hyphen,
# zero-width space and non-joiner, direction marks and isolates, word joiner, BOM. The
# zero-width joiner (U+200D) stays: emoji sequences need it.
INVISIBLE = re.compile(
    "[\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_SEP = r"[ ./\-\u2010-\u2015]"  # space, dot, slash, hyphen and the Unicode dashes
_GROUP = r"\(?\d+\)?"
# A run of digit groups. It may not continue an identifier (ORD-482913, #1234, v2.13.0)
# but may follow a JSON escape such as \n in a raw line.
NUMBER = re.compile(
    rf"(?:(?<![\w.#/\-])|(?<=\\[ntr]))\+?{_GROUP}(?:(?:{_SEP}|(?<=\))){_GROUP})*"
    rf"(?:\s?(?:x|ext\.?)\s?\d{{1,5}})?(?![\w\-]|[.,]\d)"
)
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d+$")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_MAX_DIGITS = 19


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _number_kind(text: str) -> str | None:
    """CARD, PHONE or None for one candidate run of digit groups."""
    text = _EXTENSION.sub("", text)
    groups = re.findall(r"\(\d+\)|\d+", text)
    digits = "".join(g.strip("()") for g in groups)
    international = text.startswith("+") or digits.startswith("00")
    plain = [g for g in groups if not g.startswith("(")]
    # A card is written in groups of 4+ digits, or as one run that passes the Luhn check.
    grouped = len(groups) > 1 and all(4 <= len(g) <= 6 for g in groups)
    if (
        13 <= len(digits) <= 19
        and not international
        and len(plain) == len(groups)
        and (grouped or _luhn(digits))
    ):
        return "CARD"
    years = len(groups) > 1 and all(len(g) == 4 and g[:2] in ("19", "20") for g in groups)
    longest = 15 if international else 12  # national numbers are at most 12 digits
    if not 9 <= len(digits) <= longest or _IP.fullmatch(text) or years:
        return None
    body = plain[1:] if text.startswith("+") else plain  # "+1 415 ..." has a 1-digit code
    return "PHONE" if all(len(g) >= 2 for g in body) else None


def _segment(tokens: list[str], kinds: Collection[str]) -> list[tuple[int, int, str | None]]:
    """Cut a space-separated run of digit groups into PII numbers and the rest.

    Of all cuttings, take the one whose PII covers the most digits, then the one with the
    fewest pieces. A piece stops growing past 19 digits, so this stays linear in practice.
    """
    n = len(tokens)
    best: list[tuple[int, int, list]] = [(0, 0, [])] * (n + 1)  # best[i] covers tokens[i:]
    for i in range(n - 1, -1, -1):
        covered, pieces, cuts = best[i + 1]
        options = [(covered, pieces - 1, [(i, i + 1, None), *cuts])]
        digits = 0
        for j in range(i + 1, n + 1):
            digits += sum(c.isdigit() for c in tokens[j - 1])
            if digits > _MAX_DIGITS:
                break
            kind = _number_kind(" ".join(tokens[i:j]))
            if kind in kinds:
                covered, pieces, cuts = best[j]
                options.append((covered + digits, pieces - 1, [(i, j, kind), *cuts]))
        best[i] = max(options, key=lambda o: (o[0], o[1]))
    return best[0][2]


def redact(text: str, kinds: Collection[str]) -> tuple[str, Counter[str]]:
    """Return `text` with PII of the given kinds replaced, and how many of each were found."""
    counts: Counter[str] = Counter()
    if not kinds:
        return text, counts
    text = INVISIBLE.sub("", text)
    if "EMAIL" in kinds:
        text, n = EMAIL.subn(PLACEHOLDERS["EMAIL"], text)
        counts["EMAIL"] += n

    def number(match: re.Match[str]) -> str:
        tokens = match.group(0).split(" ")
        pieces = _segment(tokens, kinds)
        counts.update(kind for _, _, kind in pieces if kind)
        return " ".join(PLACEHOLDERS[k] if k else " ".join(tokens[i:j]) for i, j, k in pieces)

    if {"PHONE", "CARD"} & set(kinds):
        text = NUMBER.sub(number, text)
    return text, +counts


def redact_raw(line: str, kinds: Collection[str]) -> str:
    """Redact a raw input line: a JSON value string by string, anything else as text."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return redact(line, kinds)[0]

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            return redact(x, kinds)[0]
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, dict):
            return {walk(k): walk(v) for k, v in x.items()}
        return x

    clean = walk(value)
    text = json.dumps(clean, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        text = json.dumps(clean)
    return text
