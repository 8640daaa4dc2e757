"""PII redaction: replace e-mails, IBANs, SSNs, card and phone numbers with typed placeholders.

`redact("mail me at a@b.com", {"EMAIL"})` returns `("mail me at <EMAIL>", Counter(EMAIL=1))`.

A pattern finds candidates; where a maintained library can judge one, it does:
- EMAIL (pattern): a local part, plain (`jane.doe+x`, `o'brien`) or quoted (`"jane doe"`),
  `@`, and a domain name or a bracketed address literal (`[192.168.1.1]`, `[IPv6:...]`)
  that must parse as an IP address.
- IBAN (`stdnum.iban`): country code, check digits and account part, compact or in groups
  of four; valid by mod 97 and the country's format, so a mistyped one is not an IBAN.
- SSN (pattern): any number written 3-2-4 with dashes or spaces (536-22-1234). Every one
  is hidden, those no SSN can be too (area 000, 666 or 9xx, group 00, serial 0000): ITINs
  are 9xx and a mistyped SSN is still private, so no library's validity check decides.
  With SSN not among the kinds, a 3-2-4 number is judged like any other run of digits,
  and PHONE takes it (9 digits in groups of 2+).
- CARD: 13-19 digits in groups of 4-6 digits (4111 1111 1111 1111, 3782 822463 10005; a
  mistyped card written this way is still hidden), or one run that starts like a card
  (2-6) and passes the Luhn check (`stdnum.luhn`).
- PHONE: 9-12 digits, or up to 15 after a `+`/`00` international prefix, in groups of 2+
  digits (a country code, the area digit after it, `(0)` or a North American `1-` may be
  shorter), separated by spaces, dots, slashes or dashes, with an optional `x123`/`ext 123`
  extension. An international number must also be possible for its country code
  (`phonenumbers`); a national one is judged by shape alone, since its country is unknown.
E-mails go first, then IBANs (so none is half taken for a card), then runs of digit groups.

Numbers are judged by shape and context too, so the details an answer needs survive: order
and reference numbers (`ORD-482913`, `#123456789`, `order 1234567890`: no SSN or phone is
read right after a word such as "order", "invoice" or "tracking", only after a card that
follows it), tracking numbers, amounts (`$1,299.99`), dates and times, ZIP+4 codes, IP
addresses and versions stay. Numbers side by side ("415-555-0132 4111 1111 1111 1111",
"415-555-0132/415-555-0199") are told apart. Shapes err on privacy: "12345 67890" counts as
a phone. Names and postal addresses are not detected: that needs a language model, and
none runs offline here.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import typing
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

import phonenumbers
from stdnum import iban, luhn

from llmops.params import PiiKind

KINDS: tuple[str, ...] = typing.get_args(PiiKind)  # the allowed params.yaml prep.redact values
PLACEHOLDERS = {kind: f"<{kind}>" for kind in KINDS}

# Invisible format characters that could hide PII from the patterns: soft hyphen,
# zero-width space and non-joiner, direction marks and isolates, word joiner, BOM, and a
# zero-width joiner next to a letter or digit (between emoji it stays: it builds them). A
# run of them goes whole, so a joiner hidden behind another invisible goes in the same pass
# (the leading lookahead only makes the scan skip ordinary characters faster).
_HIDDEN = "\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
INVISIBLE = re.compile(
    rf"(?=[{_HIDDEN}\u200d])(?:(?<=\w)[{_HIDDEN}\u200d]+|[{_HIDDEN}\u200d]+(?=\w)|[{_HIDDEN}])"
)
# A local part, plain or quoted, and a domain name or an address literal (RFC 5321). Quoted
# parts are not capped at 64 characters: redacting a number inside one would bring it under
# the cap, and a second pass would find what the first let through.
EMAIL = re.compile(
    r"(?:(?<![\w.%+-])[\w.%+-][\w.%+'-]*|\"(?:[^\"\\\r\n]|\\.)+\")"
    r"@(?:[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}|\[(?P<literal>(?:IPv6:)?[\dA-Fa-f:.]{2,45})\])"
)
# Country code, check digits, then the account part: compact (15-34 characters in all) or
# in groups of four with a shorter last one. The longest valid prefix counts (_iban).
IBAN = re.compile(
    r"(?<!\w)[A-Za-z]{2}\d{2}"
    r"(?:[A-Za-z\d]{11,30}|(?:[\s\-][A-Za-z\d]{4}){2,7}(?:[\s\-][A-Za-z\d]{1,3})?)(?!\w)"
)
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


def _email(match: re.Match[str], counts: Counter[str]) -> str:
    literal = match.group("literal")
    if literal is not None:
        try:
            ipaddress.ip_address(literal.removeprefix("IPv6:"))
        except ValueError:
            return match.group(0)  # "[...]" that is no address: not an e-mail
    counts["EMAIL"] += 1
    return PLACEHOLDERS["EMAIL"]


def _iban(match: re.Match[str], counts: Counter[str]) -> str:
    """The longest valid IBAN at the start of `match` as <IBAN>, the rest as it was."""
    text = match.group(0)
    for end in sorted((m.end() for m in re.finditer(r"[A-Za-z\d]+", text)), reverse=True):
        if iban.is_valid(text[:end]):
            counts["IBAN"] += 1
            return PLACEHOLDERS["IBAN"] + text[end:]
    return text


def _is_card(groups: list[str], digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or any(g.startswith("(") for g in groups):
        return False
    if len(groups) > 1:
        return all(4 <= len(g) <= 6 for g in groups)
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


_Cut = tuple[int, int, str | None]  # tokens i..j-1 of a run and their kind (None: kept)
_Table = list[tuple[int, int, list[_Cut]]]  # per start token: digits covered, -pieces, cuts


def _best_cuts(
    tokens: list[str],
    joined: Callable[[int, int], str],
    kinds: Collection[str],
    reference: bool,
    after: _Table | None = None,
) -> _Table:
    """best[i] = (digits covered, -pieces, cuts) for the best cutting of tokens[i:].

    `after` is the table for the tokens past a PII piece: a number that follows another
    one is no longer right after the reference word (by default, this same table).
    """
    n = len(tokens)
    best: _Table = [(0, 0, [])] * (n + 1)
    after = best if after is None else after
    for i in range(n - 1, -1, -1):
        covered, pieces, cuts = best[i + 1]
        options = [(covered, pieces - 1, [(i, i + 1, None), *cuts])]
        digits = 0
        for j in range(i + 1, n + 1):
            digits += sum(c.isdigit() for c in tokens[j - 1])
            if digits > _MAX_DIGITS:
                break
            kind = _number_kind(joined(i, j), reference, kinds)
            if kind in kinds:
                covered, pieces, cuts = after[j]
                options.append((covered + digits, pieces - 1, [(i, j, kind), *cuts]))
        best[i] = max(options, key=lambda o: (o[0], o[1]))
    return best


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

    best = _best_cuts(tokens, joined, kinds, reference=False)
    if reference:
        best = _best_cuts(tokens, joined, kinds, reference=True, after=best)
    cuts = best[0][2]
    text = "".join((PLACEHOLDERS[k] if k else joined(i, j)) + seps[j - 1] for i, j, k in cuts)
    return text, Counter(kind for _, _, kind in cuts if kind)


def redact(text: str, kinds: Collection[str]) -> tuple[str, Counter[str]]:
    """Return `text` with PII of the given kinds replaced, and how many of each were found."""
    counts: Counter[str] = Counter()
    if not kinds:
        return text, counts
    text = INVISIBLE.sub("", text)
    if "EMAIL" in kinds and "@" in text:
        text = EMAIL.sub(lambda m: _email(m, counts), text)
    if "IBAN" in kinds:  # before the digit runs, or its digits would be read as a card
        text = IBAN.sub(lambda m: _iban(m, counts), text)

    def number(match: re.Match[str]) -> str:
        run = match.group(0)
        if _TRACKING.fullmatch(run):
            return run
        before = match.string[max(0, match.start() - 30) : match.start()]
        out, found = _segment(run, kinds, reference=bool(_REFERENCE.search(before)))
        counts.update(found)
        return out

    if {"SSN", "CARD", "PHONE"} & set(kinds):
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
