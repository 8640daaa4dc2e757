"""PII redaction: replace emails, phone numbers and card numbers with typed placeholders.

`redact("mail me at a@b.com", {"EMAIL"})` returns `("mail me at <EMAIL>", Counter(EMAIL=1))`.
Numbers are judged by their digit count, so order numbers (`ORD-482913`), amounts
(`$49.99`) and dates (`2026-11-28`) stay: 13-19 digits is a card (conservatively, without
a Luhn check: a mistyped card is still a card), 9-15 digits is a phone number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "CARD": "<CARD>"}

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digit groups joined by single separators, optionally +country and (area code).
# The look-arounds keep identifiers such as ORD-482913 or v2.13.0-rc1 out.
NUMBER = re.compile(r"(?<![\w.-])\+?\(?\d+\)?(?:[ .-]\(?\d+\)?)*(?![\w-]|\.\d)")
CARD_DIGITS = range(13, 20)
PHONE_DIGITS = range(9, 16)


def _number_kind(text: str) -> str | None:
    digits = sum(c.isdigit() for c in text)
    if digits in CARD_DIGITS and not text.startswith(("+", "(")):
        return "CARD"
    if digits in PHONE_DIGITS:
        return "PHONE"
    return None


def redact(text: str, kinds: Collection[str]) -> tuple[str, Counter[str]]:
    """Return `text` with PII of the given kinds replaced, and how many of each were found."""
    counts: Counter[str] = Counter()
    if "EMAIL" in kinds:
        text, n = EMAIL.subn(PLACEHOLDERS["EMAIL"], text)
        counts["EMAIL"] += n

    def number(match: re.Match[str]) -> str:
        tokens = match.group(0).split(" ")
        pieces = _segment(tokens, kinds)
        counts.update(kind for _, _, kind in pieces if kind)
        return " ".join(
            PLACEHOLDERS[kind] if kind else " ".join(tokens[i:j]) for i, j, kind in pieces
        )

    if {"PHONE", "CARD"} & set(kinds):
        text = NUMBER.sub(number, text)
    return text, +counts


def _segment(tokens: list[str], kinds: Collection[str]) -> list[tuple[int, int, str | None]]:
    """Cut a space-separated run of digit groups into PII numbers and the rest.

    "415-555-0132 4111 1111 1111 1111" is a phone and a card, not an 18-digit card and
    leftovers: of all cuttings, take the one whose PII covers the most digits, then the one
    with the fewest pieces. Runs are a few tokens long, so the quadratic search is cheap.
    """
    n = len(tokens)
    # best[i]: (digits covered, -pieces, cuts) for tokens[i:]
    best: list[tuple[int, int, list]] = [(0, 0, [])] * (n + 1)
    for i in range(n - 1, -1, -1):
        covered, pieces, cuts = best[i + 1]
        options = [(covered, pieces - 1, [(i, i + 1, None), *cuts])]
        for j in range(i + 1, n + 1):
            text = " ".join(tokens[i:j])
            kind = _number_kind(text)
            if kind in kinds:
                covered, pieces, cuts = best[j]
                digits = sum(c.isdigit() for c in text)
                options.append((covered + digits, pieces - 1, [(i, j, kind), *cuts]))
        best[i] = max(options, key=lambda o: (o[0], o[1]))
    return best[0][2]
