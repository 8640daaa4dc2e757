"""PII redaction: replace emails, phone numbers and card numbers with typed placeholders.

`redact("mail me at a@b.com", {"EMAIL"})` returns `("mail me at <EMAIL>", Counter(EMAIL=1))`.

Numbers are judged by shape and context, so the details an answer needs survive: order and
reference numbers (`ORD-482913`, `#123456789`, `order 1234567890`), tracking numbers,
amounts (`$1,299.99`), dates and times, ZIP+4 codes, IP addresses and versions stay.
- CARD: 13-19 digits in groups of 4-6 digits (4111 1111 1111 1111, 3782 822463 10005), or
  one run that starts like a card (2-6) and passes the Luhn check.
- PHONE: 9-12 digits, or up to 15 after a `+`/`00` international prefix, in groups of 2+
  digits (a country code, the area digit after it, `(0)` or a North American `1-` may be
  shorter), separated by spaces, dots, slashes or dashes, with an optional `x123`/`ext 123`
  extension; not right after a word such as "order", "invoice" or "tracking".
Numbers side by side ("415-555-0132 4111 1111 1111 1111", "415-555-0132/415-555-0199") are
told apart. These are heuristics that err on privacy: "12345 67890" counts as a phone.
"""

from __future__ import annotations

import json
import re
import typing
from collections import Counter
from collections.abc import Collection
from typing import Any

from llmops.params import PiiKind

KINDS: tuple[str, ...] = typing.get_args(PiiKind)  # EMAIL, PHONE, CARD (params.yaml prep.redact)
PLACEHOLDERS = {kind: f"<{kind}>" for kind in KINDS}

# Invisible format characters that could hide PII from the patterns: soft hyphen,
# zero-width space and non-joiner, direction marks and isolates, word joiner, BOM, and a
# zero-width joiner next to a letter or digit (between emoji it stays: it builds them).
INVISIBLE = re.compile(
    "[\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
    r"|(?<=\w)\u200d|\u200d(?=\w)"
)
EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-][\w.%+'-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_SEP = r"(?:\s{1,3}|[./\-\u2010-\u2015\u2212\uff0d])"  # spaces (NBSP too), dots, slashes, dashes
_GROUP = r"(?:\(\d+\)|\d+)"
# A run of digit groups. It may not continue an identifier (ORD-482913, #1234, v2.13.0),
# but may follow an abbreviation ("Tel.4155550132"); it may not run into a decimal or a time.
NUMBER = re.compile(
    rf"(?:(?<![\w.#/\-])|(?<=[^\W\d_]\.))\+?{_GROUP}(?:(?:{_SEP}|(?<=\))){_GROUP})*"
    rf"(?:\s?(?:x|ext\.?)\s?\d{{1,5}})?(?![\w\-]|[.:]\d)"
)
_REFERENCE = re.compile(
    r"(?i)\b(?:order|invoice|tracking|ref|reference|ticket|case|serial|s/?n|part|po|"
    r"confirmation|transaction|booking|shipment|parcel|dhl|ups|usps|fedex)"
    r"(?:\s*(?:no\.?|nr\.?|number|num|id))?\s*[#:.]?\s*$"
)
_TRACKING = re.compile(r"\d{4}(?:\s\d{4}){4,}(?:\s\d{1,4})?")  # 20+ digits in blocks of 4
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d+$")
_NOT_PHONE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}|\d{5}-\d{4}")  # IPv4 address, ZIP+4
_MAX_DIGITS = 19


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _is_card(groups: list[str], digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or any(g.startswith("(") for g in groups):
        return False
    if len(groups) > 1:
        return all(4 <= len(g) <= 6 for g in groups)
    return digits[0] in "23456" and _luhn(digits)


def _is_phone(text: str, groups: list[str], digits: str) -> bool:
    international = text.startswith("+") or digits.startswith("00")
    longest = 15 if international else 12  # national numbers are at most 12 digits
    if not 9 <= len(digits) <= longest or _NOT_PHONE.fullmatch(text):
        return False
    plain = [g for g in groups if not g.startswith("(")]
    if len(plain) >= 3 and all(len(g) == 4 for g in plain):
        return False  # blocks of four: a card-like reference or a year list, not a phone
    if international:
        plain = plain[2:]  # the country code and the area digit may be short (+33 6 12 ...)
    elif plain[0] == "1" and len(digits) == 11:
        plain = plain[1:]  # North American 1-415-555-0132
    return all(len(g) >= 2 for g in plain)


def _number_kind(text: str, reference: bool) -> str | None:
    """CARD, PHONE or None for one candidate run of digit groups."""
    text = _EXTENSION.sub("", text)
    groups = re.findall(r"\(\d+\)|\d+", text)
    if not groups:
        return None
    digits = "".join(g.strip("()") for g in groups)
    if not text.startswith("+") and _is_card(groups, digits):
        return "CARD"
    if not reference and _is_phone(text, groups, digits):
        return "PHONE"
    return None


def _segment(run: str, kinds: Collection[str], reference: bool) -> tuple[str, Counter[str]]:
    """Redact the PII numbers in a run of digit groups that may hold several numbers.

    The run is cut at spaces and slashes; of all cuttings, take the one whose PII covers
    the most digits, then the one with the fewest pieces. A piece stops growing past 19
    digits, so this stays linear in practice.
    """
    parts = re.split(r"(\s+|/)", run)
    tokens, seps = parts[0::2], [*parts[1::2], ""]

    def joined(i: int, j: int) -> str:  # tokens i..j-1 with the separators between them
        return "".join(t + s for t, s in zip(tokens[i:j], [*seps[i : j - 1], ""], strict=True))

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
            kind = _number_kind(joined(i, j), reference)
            if kind in kinds:
                covered, pieces, cuts = best[j]
                options.append((covered + digits, pieces - 1, [(i, j, kind), *cuts]))
        best[i] = max(options, key=lambda o: (o[0], o[1]))
    found = Counter(kind for _, _, kind in best[0][2] if kind)
    text = "".join(
        (PLACEHOLDERS[kind] if kind else joined(i, j)) + seps[j - 1] for i, j, kind in best[0][2]
    )
    return text, found


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
        run = match.group(0)
        if _TRACKING.fullmatch(run):
            return run
        before = match.string[max(0, match.start() - 30) : match.start()]
        out, found = _segment(run, kinds, reference=bool(_REFERENCE.search(before)))
        counts.update(found)
        return out

    if {"PHONE", "CARD"} & set(kinds):
        text = NUMBER.sub(number, text)
    return text, +counts


def _unescape(text: str) -> str:
    """JSON escapes of a broken line as characters, so PII joined by them is still seen."""

    def char(m: re.Match[str]) -> str:
        code = int(m.group(1), 16)
        return m.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)

    return re.sub(r"\\[ntr]", " ", re.sub(r"\\u([0-9a-fA-F]{4})", char, text))


def redact_raw(line: str, kinds: Collection[str]) -> str:
    """Redact a raw input line: a JSON value string by string (numbers too), else as text."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return redact(_unescape(line), kinds)[0]

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            return redact(x, kinds)[0]
        if isinstance(x, int | float) and not isinstance(x, bool):
            text = redact(str(x), kinds)[0]
            return x if text == str(x) else text
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
