"""Redaction: replace e-mails, IBANs, SSNs, card and phone numbers and secrets with typed
placeholders.

`redact("mail me at a@b.com", {"EMAIL"})` returns `("mail me at <EMAIL>", Counter(EMAIL=1))`.

Before looking, the text is unhidden (`llmops.config.textnorm.unhide`: blank-looking characters
such as U+2800 become spaces, Unicode's default-ignorable ones such as U+034F, U+E0020 or
zero-width spaces go) and the patterns read a copy with every Unicode decimal digit
(Arabic-Indic, Devanagari, full-width...) as its ASCII digit, one character for one, so
what they find is replaced in the text as written.

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
- SECRET (`llmops.data.secretscan`: detect-secrets' rules): API keys and tokens (AWS, GitHub,
  GitLab, Slack, Stripe, OpenAI, JWT, ...), private key blocks, passwords in URLs and in
  `password=...` assignments.
Spelled out, these are found too: an e-mail whose `@` or dots are bracketed (`jane [at]
example [dot] com`, `jane(at)example.com`) or spelled around a common top-level domain
(`jane dot doe at example dot com`; not when a domain label is "the", "my"...), and digits
written one English word each ("five five five, one two three, four five six seven"), 7 or
more in a row (single digits may mix in), judged whole as a card, SSN or phone number with
commas, dots, dashes or slashes as group breaks. Out of scope: "jane at example.com" (it
reads like "bought it at shop.com"), numbers as words above nine ("forty-two", "double
five") or in other languages, digits in look-alike letters (O for 0, l for 1), keycaps.
Secrets go first (a password in a URL is no e-mail), then e-mails, then IBANs (so none is
half taken for a card), then spelled digits, then runs of digit groups.

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

import ipaddress
import json
import re
import typing
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from stdnum import iban

from llmops.config.params import PiiKind
from llmops.config.textnorm import unhide
from llmops.data.piinumbers import numbers, spelled_numbers
from llmops.data.secretscan import find_secrets

KINDS: tuple[str, ...] = typing.get_args(PiiKind)  # the allowed params.yaml prep.redact values
PLACEHOLDERS = {kind: f"<{kind}>" for kind in KINDS}
_PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS.values())))
_Edit = tuple[int, int, str]  # text[start:end] becomes the placeholder of a kind

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
_OTHER_DIGIT = re.compile(r"[^\D0-9]")  # a Unicode decimal digit that is not ASCII

# Spelled e-mails: `at` and `dot` spelled or bracketed ([at], (dot), {at}, <dot>), or a
# literal `@` or `.` beside a spelled one (_spelled_email_ok decides which mixes count).
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+|\s*@\s*)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\.)"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
# Dots are capped (4 in the local part, 5 in the domain): an uncapped "a dot a dot ..."
# would be rescanned from every word, quadratic in its length.
SPELLED_EMAIL = re.compile(
    rf"(?i)(?<![\w.%+'-])[\w%+'-]+(?:{_DOT}[\w%+'-]+){{0,4}}(?P<at>{_AT})"
    rf"{_LABEL}(?:{_DOT}{_LABEL}){{0,4}}{_DOT}(?P<tld>[^\W\d_]{{2,}})(?![\w-])"
)
_SPELLED_HINT = re.compile(r"(?i)\bdot\b|[\[({<]\s*at\s*[\])}>]")
_BRACKETED = re.compile(r"(?i)[\[({<]\s*(?:at|dot)\s*[\])}>]")
# Top-level domains that are no English word, and words no domain label is: with `at` and
# `dot` both spelled, "look at the dot com bubble" must stay.
_COMMON_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "io",
        "co",
        "uk",
        "de",
        "fr",
        "es",
        "nl",
        "ch",
        "se",
        "dk",
        "fi",
        "pl",
        "ru",
        "jp",
        "cn",
        "br",
        "au",
        "ca",
        "eu",
        "info",
        "biz",
        "dev",
        "app",
        "ai",
    ]
)
_NOT_LABELS = frozenset(
    ["the", "a", "an", "this", "that", "my", "your", "our", "their", "his", "her", "its"]
)


def _fold_digits(text: str) -> str:
    """Every Unicode decimal digit as its ASCII digit (one character for one)."""
    if text.isascii():
        return text
    return _OTHER_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)


def _apply(text: str, edits: list[_Edit]) -> str:
    """`text` with each (sorted, disjoint) edit's span replaced by its placeholder."""
    out, pos = [], 0
    for start, end, kind in edits:
        out += [text[pos:start], PLACEHOLDERS[kind]]
        pos = end
    return "".join([*out, text[pos:]])


def _secrets(text: str) -> list[_Edit]:
    # Placeholders masked: "<SECRET> = x" must not read as an assignment to a secret.
    masked = _PLACEHOLDER.sub(lambda m: "*" * len(m.group()), text) if "<" in text else text
    return [(start, end, "SECRET") for start, end in find_secrets(masked)]


def _emails(text: str) -> list[_Edit]:
    if "@" not in text:
        return []
    edits = []
    for m in EMAIL.finditer(text):
        literal = m.group("literal")
        if literal is not None:
            try:
                ipaddress.ip_address(literal.removeprefix("IPv6:"))
            except ValueError:
                continue  # "[...]" that is no address: not an e-mail
        edits.append((m.start(), m.end(), "EMAIL"))
    return edits


def _spelled_email_ok(m: re.Match[str]) -> bool:
    if _BRACKETED.search(m.group(0)):
        return True
    domain = m.string[m.end("at") : m.end()]
    if "@" in m.group("at"):  # with a spelled dot (all literal was EMAIL's to take)
        return re.search(r"(?i)\sdot\s", domain) is not None
    labels = re.split(rf"(?i){_DOT}", domain)
    return (
        "." not in domain
        and m.group("tld").lower() in _COMMON_TLDS
        and not _NOT_LABELS & {label.lower() for label in labels}
    )


def _spelled_emails(text: str) -> list[_Edit]:
    if not _SPELLED_HINT.search(text):
        return []
    edits, pos = [], 0
    while m := SPELLED_EMAIL.search(text, pos):
        if _spelled_email_ok(m):
            edits.append((m.start(), m.end(), "EMAIL"))
            pos = m.end()
        else:
            pos = m.start() + 1  # a later start may fit ("me at jane dot doe at ...")
    return edits


def _ibans(text: str) -> list[_Edit]:
    """The longest valid IBAN at the start of each candidate; the rest stays as it was."""
    edits = []
    for match in IBAN.finditer(text):
        candidate = match.group(0)
        ends = sorted((m.end() for m in re.finditer(r"[A-Za-z\d]+", candidate)), reverse=True)
        end = next((e for e in ends if iban.is_valid(candidate[:e])), 0)
        if end:
            edits.append((match.start(), match.start() + end, "IBAN"))
    return edits


def _finders(kinds: Collection[str]) -> list[Callable[[str], list[_Edit]]]:
    """The finders for `kinds`, in the order they must run (see the module docstring)."""
    finders: list[Callable[[str], list[_Edit]]] = []
    if "SECRET" in kinds:
        finders.append(_secrets)
    if "EMAIL" in kinds:
        finders += [_emails, _spelled_emails]
    if "IBAN" in kinds:  # before the digit runs, or its digits would be read as a card
        finders.append(_ibans)
    if {"SSN", "CARD", "PHONE"} & set(kinds):
        finders += [lambda t: spelled_numbers(t, kinds), lambda t: numbers(t, kinds)]
    return finders


def redact(text: str, kinds: Collection[str]) -> tuple[str, Counter[str]]:
    """Return `text` with PII of the given kinds replaced, and how many of each were found."""
    counts: Counter[str] = Counter()
    if not kinds:
        return text, counts
    text = unhide(text)
    seen = _fold_digits(text)  # what the finders read: same length, so spans map 1:1
    for find in _finders(kinds):
        edits = find(seen)
        if edits:
            counts.update(kind for _, _, kind in edits)
            text, seen = _apply(text, edits), _apply(seen, edits)
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

    try:
        clean = walk(value)
    except RecursionError:  # nested deeper than Python recurses (json parses deeper): as text
        return redact(_unescape(line), kinds)[0]
    text = json.dumps(clean, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        text = json.dumps(clean)
    return text


_NAME_BREAKS = re.compile(r"[/_]|(?<=[^\W\d_])-(?=\d)")  # "/", "_", the "-" in "call-555"


def pii_in_name(name: str, kinds: Collection[str]) -> Counter[str]:
    """The PII kinds in a file name (as `display` shows it), read with its path separators,
    underscores and a dash between a word and a number as spaces: "call-555-123-4567.csv",
    "raw/4111 1111 1111 1111.jsonl". A dated name ("export-2026-09-30.jsonl") holds none."""
    spaced = _NAME_BREAKS.sub(" ", name)
    return redact(name, kinds)[1] | redact(spaced, kinds)[1]
