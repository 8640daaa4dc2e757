"""Secret scanning: where API keys, tokens, private keys and passwords sit in a text.

`find_secrets("use ghp_" + 36 * "a")` returns `[(4, 44)]`; `llmops.data.redact` puts `<SECRET>`
in each span. Try it: python -m llmops.data.secretscan "some text"

The rules are detect-secrets' (Yelp), not ours, so they follow its releases:
- every regex of its RegexBasedDetector plugins: AWS, Azure storage, basic auth in URLs,
  Cloudant, Discord, GitHub, GitLab, IBM Cloud, JWT, Mailchimp, npm, OpenAI, private keys,
  PyPI, SendGrid, Slack, SoftLayer, Square, Stripe, Telegram, Twilio, and any plugin a
  later version adds. A plugin that checks its matches further (JWT: each part must
  decode) keeps that check.
- the KeywordDetector's rules for config files (`password = hunter2`, `api_key: "..."`,
  `"..." == db_pass`), with upstream's filters for their values (templated `{pw}` or
  `${PW}`, sequential `123456`, UUIDs, no letter at all, `get_secret()` calls). In prose
  they only fire on a keyword joined to a value by `=` or `:` ("my password is x" is not
  caught; "password: forgot it" loses "forgot", erring on privacy).
Left out, as no secret or too noisy in prose: IPPublicDetector (an IP address is no
secret), the high-entropy string detectors (they take order numbers, ids and hashes), and
ArtifactoryDetector's encrypted-password rule (`AP`, a hex digit, 8+ letters or digits: it
reads accounts-payable numbers and capitalised words such as AP1002345678 or APEXLEGENDS as
passwords); its API-token rule (`AKC...`) stays.

Upstream scans code line by line and reports a value; here a span is redacted in prose:
- a pattern's group is the secret (the value after `aws_secret_access_key=`, the password
  of `https://user:pw@host`), unless it only names the token's prefix (GitHub's
  `(ghp|gho|...)`) or a part inside it: then the whole match is;
- a span stops at its first whitespace (upstream's `password=.*` runs to the end of a code
  line; prose goes on) and, ending inside a token, runs to the token's end (the JWT rule
  stops lazily before the signature);
- a private key's BEGIN line opens a span that runs through its END line (or a PuTTY
  file's Private-MAC), else to the end of the text.
Rules compile on first use (importing detect-secrets takes ~0.1 s); a cheap pre-filter
skips text no rule can match (most text), and windows keep crafted text linear (below).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Span = tuple[int, int]

_EXCLUDED = {"IPPublicDetector": None, "ArtifactoryDetector": 1}  # plugin: rule index, or all
_BLOCK_PLUGIN = "PrivateKeyDetector"  # matches only the BEGIN line of a key block
_KEY_END = re.compile(r"-----END [A-Z0-9 ]{3,40}-----|Private-MAC: *[0-9A-Fa-f]+")
_TOKEN_CHAR = re.compile(r"[\w+/=-]")
_TOKEN_TAIL = re.compile(r"[\w+/=-]+")
_WHITESPACE = re.compile(r"\s")
# Text is scanned in windows of _WINDOW characters that overlap by _OVERLAP (more than any
# rule's shortest match: a match may grow past its window, see _span), since some upstream
# regexes backtrack over the rest of a line from each candidate (npm's `//.+/:_authToken=`,
# JWT's, OpenAI's): quadratic in a window's length, so linear in the text's. Crafted input
# (a megabyte of "//") costs ~10 s per MB; ordinary text a few microseconds per 1,000 chars.
_WINDOW, _OVERLAP = 512, 256
_TOKEN_PLUGIN = "JwtTokenDetector"  # tried at each "eyJ" on the whole text (_jwt_spans)
_JWT_SEGMENT = re.compile(r"[A-Za-z0-9_=-]*")  # the characters of a JWT segment
_JWT_MAX = 16_384  # characters a JWT's later segments may take
# The pre-filter. No plugin rule matches text without a run of 20+ token characters or one
# of _HINTS (for the rules that need fewer: Artifactory, JWT, npm, URLs, key headers), or a
# Slack token's "xox"; no keyword rule without one of upstream's keywords, each of which
# holds one of _KEY_PARTS. tests/unit/data/test_hostile_secrets.py checks this against every rule's
# sample and upstream's keyword list. Searched apart (one alternation is 3x slower), the
# run from its first character only (2x faster), the words in a case-folded copy.
_LONG_RUN = re.compile(r"(?<![\w+/=.-])[\w+/=.-]{20}")
_HINTS = ("://", "AKC", "eyJ", "_authToken", "PRIVATE KEY", "PuTTY")
_KEY_PARTS = ("key", "pass", "pwd", "secret", "contrase")


@dataclass(frozen=True)
class Rule:
    """One upstream regex; `group` picks the value (None: the upstream way, see above)."""

    plugin: str
    pattern: re.Pattern[str]
    group: int | None = None
    check: Callable[[str], bool] | None = None  # a plugin's own test of a whole match
    value_ok: Callable[[str, str], bool] | None = None  # (value, match) -> keep
    keyword: bool = False  # runs only on text with a keyword (its regexes are the slowest)


def _plugin_classes() -> Iterable[type]:
    from detect_secrets import plugins
    from detect_secrets.plugins.base import RegexBasedDetector

    for info in pkgutil.iter_modules(plugins.__path__):
        module = importlib.import_module(f"{plugins.__name__}.{info.name}")
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, RegexBasedDetector)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
            ):
                yield cls


def _keyword_value_ok(value: str, match: str) -> bool:
    """Upstream's default filters, as they apply to one keyword value."""
    from detect_secrets.filters import heuristic as h

    return not (
        h.is_templated_secret(value)
        or h.is_sequential_string(value)
        or h.is_potential_uuid(value)
        or h.is_prefixed_with_dollar_sign(value)
        or h.is_not_alphanumeric_string(value)
        or h.is_indirect_reference(match)
    )


@functools.cache
def _keywords() -> re.Pattern[str]:
    """Upstream's keywords, one of which every keyword rule needs."""
    from detect_secrets.plugins import keyword

    first = "".join(sorted({word[0] for word in keyword.DENYLIST}))
    return re.compile(rf"(?i)(?=[{first}])(?:{'|'.join(keyword.DENYLIST)})")  # 3x faster


@functools.cache
def rules() -> tuple[Rule, ...]:
    """The kept detect-secrets rules, compiled once."""
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector

    out: list[Rule] = []
    for cls in sorted(_plugin_classes(), key=lambda c: c.__name__):
        name = cls.__name__
        if name in _EXCLUDED and _EXCLUDED[name] is None:
            continue
        own_check = cls.analyze_string is not RegexBasedDetector.analyze_string
        plugin: Any = cls() if own_check else None
        for i, pattern in enumerate(cls.denylist):
            if _EXCLUDED.get(name, -1) == i:
                continue
            check = (lambda s, p=plugin: any(True for _ in p.analyze_string(s))) if plugin else None
            out.append(Rule(name, pattern, check=check))
    first = "".join(sorted({word[0] for word in keyword.DENYLIST}))
    for pattern, group in keyword.CONFIG_DENYLIST_REGEX_TO_GROUP.items():
        if pattern.pattern.startswith(keyword.DENYLIST_REGEX):  # same matches, 3x faster
            pattern = re.compile(rf"(?=[{first}])(?:{pattern.pattern})", pattern.flags)
        out.append(
            Rule("KeywordDetector", pattern, group, value_ok=_keyword_value_ok, keyword=True)
        )
    return tuple(out)


def _value(rule: Rule, m: re.Match[str]) -> Span | None:
    """The span of a match's secret (before trimming and cutting at whitespace)."""
    if rule.group is not None:
        return m.span(rule.group) if m.group(rule.group) else None
    for g in range(1, (m.re.groups or 0) + 1):
        start, end = m.span(g)
        if end <= start:
            continue
        inner = start == m.start() or _TOKEN_CHAR.match(m.string, end)
        return m.span() if inner else (start, end)
    return m.span()


def _span(rule: Rule, m: re.Match[str]) -> Span | None:
    """Where the secret of one match lies in the whole text (see the module docstring)."""
    text = m.string
    if rule.plugin == _BLOCK_PLUGIN:
        start = m.start()
        while start and text[start - 1] == "-":  # the "-----" before BEGIN
            start -= 1
        end_mark = _KEY_END.search(text, m.end())
        return start, end_mark.end() if end_mark else len(text)
    value = _value(rule, m)
    if value is None:
        return None
    start, end = value
    while start < end and (text[start].isspace() or text[start] in "\"'"):
        start += 1  # Artifactory's rules take the space or quote before the token
    space = _WHITESPACE.search(text, start, end)
    if space is not None:
        end = space.start()
    elif (tail := _TOKEN_TAIL.match(text, end)) is not None:
        end = tail.end()
    if text[start:end].endswith(("'", '"')):  # ...and the quote after it
        end -= 1
    if end <= start:
        return None
    if rule.value_ok is not None and not rule.value_ok(text[start:end], text[m.start() : end]):
        return None
    return start, end


def _windows(text: str) -> list[tuple[int, int, bool, bool]]:
    """(start, end, keyword rules may match, plugin rules may match) of each window that
    may hold a secret."""
    out = []
    for lo in range(0, len(text), _WINDOW):
        hi = min(lo + _WINDOW + _OVERLAP, len(text))
        part = text[lo:hi] if lo or hi < len(text) else text  # most texts are one window
        folded = part.casefold()  # as the rules' IGNORECASE: "PASSWORD", "paſſword"
        keyword = any(k in folded for k in _KEY_PARTS) and bool(_keywords().search(part))
        plugin = bool(_LONG_RUN.search(part) or any(h in part for h in _HINTS) or "xox" in folded)
        if keyword or plugin:
            out.append((lo, hi, keyword, plugin))
        if hi == len(text):
            break
    return out


def _jwt_spans(rule: Rule, text: str) -> list[Span]:
    """The JWT rule's spans, tried at each "eyJ" on the whole text rather than in windows (a
    token of 1-2 KB is common). A try from inside a segment a try already crossed ends the
    same way (the segment ends at the same character), so it is skipped: linear."""
    spans, pos = [], 0
    while (start := text.find("eyJ", pos)) >= 0:
        segment_end = _JWT_SEGMENT.match(text, start).end()  # type: ignore[union-attr]
        m = rule.pattern.match(text, start, min(len(text), segment_end + _JWT_MAX))
        if m is not None and (rule.check is None or rule.check(m.group(0))):
            span = _span(rule, m)
            spans += [span] if span else []
        pos = max(segment_end, m.end() if m else 0, start + 1)
    return spans


def _keyword_spans(rule: Rule, text: str, lo: int, hi: int) -> Iterator[Span]:
    """A keyword rule's secrets in text[lo:hi]. Upstream's pattern runs a value to the end
    of its line and `_span` cuts it at the first space; the next search starts there (not at
    the end of the line), so `password=a password=b` yields both values. Each search starts
    at a keyword, inside one window: linear in the window's keywords."""
    pos = lo
    while (m := rule.pattern.search(text, pos, hi)) is not None:
        span = _span(rule, m)
        if span is not None:
            yield span
        pos = max(m.start() + 1, span[1] if span else 0)


def find_secrets(text: str) -> list[Span]:
    """Sorted, non-overlapping spans of `text` that hold a secret."""
    windows = _windows(text)
    found: list[Span] = []
    for rule in rules() if windows else ():
        if rule.plugin == _TOKEN_PLUGIN:  # a JWT is often longer than a window
            found += _jwt_spans(rule, text)
            continue
        covered = 0  # a match inside a span found already adds nothing: skipped, so linear
        for lo, hi, keyword, plugin in windows:
            if not (keyword if rule.keyword else plugin):
                continue
            if rule.keyword:
                found += _keyword_spans(rule, text, lo, hi)
                continue
            for m in rule.pattern.finditer(text, lo, hi):
                if m.end() <= covered or (rule.check and not rule.check(m.group(0))):
                    continue
                span = _span(rule, m)
                if span is not None:
                    found.append(span)
                    covered = max(covered, span[1])
    merged: list[Span] = []
    for start, end in sorted(found):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def main(argv: list[str] | None = None) -> None:
    """Print each secret found in the arguments (or stdin) with its rule's span."""
    text = " ".join(sys.argv[1:] if argv is None else argv) or sys.stdin.read()
    for start, end in find_secrets(text):
        print(f"{start}-{end}: {text[start:end]!r}")


if __name__ == "__main__":
    main()
