"""Seeded noise and fake PII for sample messages.

A message is built as a list of segments `(kind, text)`: kind "text" for template words,
"slot" for order numbers, products, amounts, dates and names, and "email" / "phone" / "card"
for planted PII. Typos, punctuation and whitespace noise touch "text" only, so slot values
stay exact (the reply echoes them) and PII stays matchable; case noise spares PII too.
Fake PII stays fictional: example.* domains, 555-01xx and Ofcom drama numbers, and random
card numbers made Luhn-valid so a checksum-aware redactor still treats them as cards.
"""

from __future__ import annotations

import random
import re
import unicodedata

from examples.ticket_triage.phrases import EMAIL_DOMAINS, SURNAMES

Segment = tuple[str, str]
PII_KINDS: tuple[str, ...] = ("email", "phone", "card")

_WORD = re.compile(r"[A-Za-z]{4,}")
_PUNCTUATION = re.compile(r"[.,!?]")
_AREA_CODES = ("415", "212", "312", "646", "206", "617", "303", "512")


def fake_email(rng: random.Random, first_name: str) -> str:
    """A lowercase address at a reserved example.* domain."""
    # Names such as "Zoë" or "Søren" become ASCII local parts ("zoe", "sren").
    first = unicodedata.normalize("NFKD", first_name).encode("ascii", "ignore").decode().lower()
    last = rng.choice(SURNAMES)
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first}{last}{rng.randint(1, 99)}",
            f"{first[0]}{last}",
            f"{first}_{last}",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def fake_phone(rng: random.Random) -> str:
    """A fictional US (555-01xx) or UK (020 7946 0xxx) number in a common format."""
    area, line = rng.choice(_AREA_CODES), f"01{rng.randint(0, 99):02d}"
    formats = (
        f"+1 ({area}) 555-{line}",
        f"{area}-555-{line}",
        f"({area}) 555 {line}",
        f"+1 {area} 555 {line}",
        f"+44 20 7946 0{rng.randint(0, 999):03d}",
    )
    return rng.choice(formats)


def luhn_check_digit(digits: str) -> str:
    """The digit that makes `digits + it` pass the Luhn checksum."""
    total = 0
    # Walking right to left, every second digit from the check position's neighbour doubles.
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def fake_card(rng: random.Random) -> str:
    """A Luhn-valid 15 or 16 digit card number, grouped by spaces or dashes or not at all."""
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("6011", 16), ("37", 15)))
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    number = body + luhn_check_digit(body)
    if length == 15:  # American Express groups 4-6-5
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    sep = rng.choice((" ", "-", " ", ""))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def add_typos(rng: random.Random, segments: list[Segment], count: int) -> list[Segment]:
    """Swap, drop or double one letter in `count` words of the text segments."""
    segments = list(segments)
    for _ in range(count):
        spots = [
            (i, m.start(), m.end())
            for i, (kind, text) in enumerate(segments)
            if kind == "text"
            for m in _WORD.finditer(text)
        ]
        if not spots:
            break
        i, start, end = rng.choice(spots)
        text = segments[i][1]
        word, pos = text[start:end], rng.randint(1, end - start - 2)
        op = rng.choice(("swap", "drop", "double"))
        if op == "swap":
            word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
        elif op == "drop":
            word = word[:pos] + word[pos + 1 :]
        else:
            word = word[:pos] + word[pos] + word[pos:]
        segments[i] = ("text", text[:start] + word + text[end:])
    return segments


def drop_punctuation(segments: list[Segment]) -> list[Segment]:
    """Remove . , ! ? from the text segments."""
    return [(k, _PUNCTUATION.sub("", t) if k == "text" else t) for k, t in segments]


def change_case(segments: list[Segment], upper: bool) -> list[Segment]:
    """All lowercase, or ALL CAPS shouting; PII keeps its case."""
    return [(k, t if k in PII_KINDS else (t.upper() if upper else t.lower())) for k, t in segments]


def stretch_whitespace(rng: random.Random, segments: list[Segment]) -> list[Segment]:
    """Replace one to three single spaces in text segments with runs, tabs or newlines."""
    segments = list(segments)
    for _ in range(rng.randint(1, 3)):
        spots = [
            (i, j)
            for i, (k, t) in enumerate(segments)
            if k == "text"
            for j, ch in enumerate(t)
            if ch == " "
        ]
        if not spots:
            break
        i, j = rng.choice(spots)
        text = segments[i][1]
        gap = rng.choice(("  ", "   ", "\n", " \t", "\n\n"))
        segments[i] = ("text", text[:j] + gap + text[j + 1 :])
    return segments


def pad(rng: random.Random, segments: list[Segment]) -> list[Segment]:
    """Add leading and/or trailing whitespace, as copy-pasted text often has."""
    lead, trail = rng.choice((("  ", ""), ("", " "), (" ", "  "), ("", "\n"), ("\t", "")))
    return [("text", lead), *segments, ("text", trail)]
