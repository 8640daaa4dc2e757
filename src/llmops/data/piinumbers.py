"""Numbers that are PII: card, SSN and phone numbers, in digits or spelled one word each.

`numbers(text, kinds)` and `spelled_numbers(text, kinds)` return the spans of the ones of
`kinds` (CARD, SSN, PHONE) as (start, end, kind); `llmops.data.redact` replaces them, and its
docstring says what counts as which. Digits are read as ASCII (redact folds the others).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from itertools import accumulate

import phonenumbers
from stdnum import luhn

Edit = tuple[int, int, str]  # text[start:end] is PII of a kind

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
# 536-22-1234 or 536 22 1234: the same separator twice.
_SSN_SHAPE = re.compile(r"\d{3}(\s{1,3}|[\-\u2010-\u2015\u2212\uff0d])\d{2}\1\d{4}")
_MAX_DIGITS = 19
_MIN_DIGITS = 9  # no card (13+), SSN (9) or phone number (9+) is shorter
# Digits spelled one English word each (or written one digit each), 7 or more in a row.
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DIGIT_WORDS = {"oh": "0"} | {word: str(i) for i, word in enumerate(_NUMBER_WORDS)}
_SPELLED_DIGIT = rf"(?:{'|'.join(_DIGIT_WORDS)}|\d)(?!\w)"
SPELLED_DIGITS = re.compile(
    rf"(?i)(?<![\w-]){_SPELLED_DIGIT}(?:(?:\s*[,./-]\s*|\s+){_SPELLED_DIGIT}){{6,}}"
)
_GROUP_BREAK = re.compile(r"\s*[,./-]\s*")
_DIGIT_WORD = re.compile(rf"(?i)\b(?:{'|'.join(_DIGIT_WORDS)})\b")


def _is_card(groups: list[str], digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or any(g.startswith("(") for g in groups):
        return False
    if len(groups) > 1 and all(4 <= len(g) <= 6 for g in groups):
        return True  # the card shape: a mistyped one is hidden too
    if any(len(g) < 4 for g in groups):
        return False  # short groups: a date, a version, a reference (2026-09-30-123456)
    # One run, or groups of 4 or more of other sizes (an invisible character removed
    # between two groups joins them): a card if it starts like one and passes Luhn.
    return digits[0] in "23456" and luhn.is_valid(digits)


@functools.lru_cache(maxsize=4096)  # a run of groups is tried piece by piece
def _is_possible_international(text: str) -> bool:
    try:
        number = phonenumbers.parse(re.sub(r"^\(?00", "+", text), None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


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
    if not all(len(g) >= 2 for g in plain):
        return False
    return not international or _is_possible_international(text)


def _number_kind(text: str, reference: bool, kinds: Collection[str]) -> str | None:
    """CARD, SSN, PHONE or None for one candidate run of digit groups (SSN only when it is
    one of `kinds`)."""
    text = _EXTENSION.sub("", text)
    groups = re.findall(r"\(\d+\)|\d+", text)
    if not groups:
        return None
    digits = "".join(g.strip("()") for g in groups)
    if not text.startswith("+") and _is_card(groups, digits):
        return "CARD"
    if reference:
        return None
    if "SSN" in kinds and _SSN_SHAPE.fullmatch(text):
        return "SSN"
    return "PHONE" if _is_phone(text, groups, digits) else None


# Per start token i: (digits covered, -pieces, the token the next piece starts at, this
# piece's kind or None when token i is kept, whether the rest is read in the `after` table).
_Step = tuple[int, int, int, str | None, bool]


def _best_cuts(
    tokens: list[str],
    joined: Callable[[int, int], str],
    kinds: Collection[str],
    reference: bool,
    after: list[_Step] | None = None,
) -> list[_Step]:
    """best[i]: the best cutting of tokens[i:] (most digits covered, then fewest pieces),
    as its first piece and a pointer to the rest (rebuilt by _walk), so that each step
    costs the same however long the run: no list of cuts is copied.

    `after` is the table for the tokens past a PII piece: a number that follows another
    one is no longer right after the reference word (by default, this same table).
    """
    n = len(tokens)
    best: list[_Step] = [(0, 0, n, None, False)] * (n + 1)
    rest = best if after is None else after
    for i in range(n - 1, -1, -1):
        covered, pieces = best[i + 1][:2]
        option: _Step = (covered, pieces - 1, i + 1, None, False)
        digits = 0
        for j in range(i + 1, n + 1):
            digits += sum(c.isdigit() for c in tokens[j - 1])
            if digits > _MAX_DIGITS:
                break
            if digits < _MIN_DIGITS:
                continue
            kind = _number_kind(joined(i, j), reference, kinds)
            if kind in kinds:
                covered, pieces = rest[j][:2]
                if (covered + digits, pieces - 1) > option[:2]:  # ties: the earlier option
                    option = (covered + digits, pieces - 1, j, kind, after is not None)
        best[i] = option
    return best


def _walk(table: list[_Step], after: list[_Step]) -> list[tuple[int, int, str]]:
    """The PII pieces (first token, token past it, kind) of the best cutting from token 0."""
    pieces, i = [], 0
    while i < len(table) - 1:
        _, _, j, kind, switch = table[i]
        if kind:
            pieces.append((i, j, kind))
        table = after if switch else table
        i = j
    return pieces


def _segment(run: str, kinds: Collection[str], reference: bool) -> list[Edit]:
    """The PII numbers in a run of digit groups that may hold several numbers.

    The run is cut at spaces and slashes; of all cuttings, take the one whose PII covers
    the most digits, then the one with the fewest pieces. A piece stops growing past 19
    digits, so this stays linear in the run's length.
    """
    parts = re.split(r"(\s+|/)", run)
    tokens, seps = parts[0::2], [*parts[1::2], ""]
    starts = list(
        accumulate((len(t) + len(s) for t, s in zip(tokens, seps, strict=True)), initial=0)
    )

    def end(j: int) -> int:  # where token j-1 ends in the run
        return starts[j] - len(seps[j - 1])

    def joined(i: int, j: int) -> str:  # tokens i..j-1 with the separators between them
        return run[starts[i] : end(j)]

    plain = _best_cuts(tokens, joined, kinds, reference=False)
    table = _best_cuts(tokens, joined, kinds, reference=True, after=plain) if reference else plain
    return [(starts[i], end(j), kind) for i, j, kind in _walk(table, plain)]


def _is_reference(text: str, start: int) -> bool:
    return bool(_REFERENCE.search(text[max(0, start - 30) : start]))


def numbers(text: str, kinds: Collection[str]) -> list[Edit]:
    edits = []
    for m in NUMBER.finditer(text):
        if not _TRACKING.fullmatch(m.group(0)):
            cuts = _segment(m.group(0), kinds, _is_reference(text, m.start()))
            edits += [(m.start() + i, m.start() + j, kind) for i, j, kind in cuts]
    return edits


def spelled_numbers(text: str, kinds: Collection[str]) -> list[Edit]:
    if not _DIGIT_WORD.search(text):
        return []
    edits = []
    for m in SPELLED_DIGITS.finditer(text):
        if not _DIGIT_WORD.search(m.group(0)):
            continue  # written digits: NUMBER's to judge
        groups = _GROUP_BREAK.split(m.group(0))
        digits = " ".join(
            "".join(_DIGIT_WORDS.get(w.lower(), w) for w in g.split()) for g in groups
        )
        kind = _number_kind(digits, _is_reference(text, m.start()), kinds)
        if kind in kinds:
            edits.append((m.start(), m.end(), kind))
    return edits
