"""Untrusted text as Markdown that GitHub renders as that text and nothing else.

`escape` is the one function the project uses to write model outputs, inputs, data rows,
file names, ids, labels and params values into Markdown (the pull-request report, the data
report). Its result is one line, safe in a table cell: no HTML, image, link or autolink, no
@mention or #123 reference, no emphasis, heading, list, quote or code. How:

- Line breaks become spaces (a table row is one line), and blanks at either end are
  dropped (a renderer drops them anyway; four leading spaces would start a code block).
  The bidirectional embedding, override and isolate controls (U+202A-U+202E,
  U+2066-U+2069) are dropped too, so the text reads in the order its characters are
  stored and cannot reorder the report's own text around it.
- A backslash goes before each ASCII character that makes Markdown syntax mid-line:
  \\ ` * _ ~ [ ] < & | $ (CommonMark shows a backslash-escaped punctuation character as
  itself). `_` between two ASCII letters or digits is left as is: it cannot emphasise there.
  With `&` escaped no entity is decoded, so `&#64;` stays those five characters. The first
  character gets one too when it is other ASCII punctuation (# > - + = start headings,
  quotes and lists), and so does the `.` or `)` of a leading `1.` or `1)`.
- A WORD JOINER (U+2060, invisible) goes after every @ and # (and their full-width forms),
  after a colon followed by a non-space, between `www` and `.`, and in `GH-123` before `-`.
  GitHub's autolinks (cmark-gfm: `http://`, `ftp://`, `www.`, e-mail addresses, `mailto:`,
  `xmpp:`), its @mention and #reference filters and :emoji: codes need those characters
  side by side; a backslash does not part them (`jane\\@example.com` is still a link).

`code_block` fences untrusted text (a diff) so that no line of it can close the fence.
Standard library only: llmops.report.comment, which must run with no install, imports it.
"""

from __future__ import annotations

import re

JOINER = "\u2060"  # WORD JOINER: invisible, and not a letter, digit or space to any parser

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BREAK = re.compile(r"\r\n?|\n")
_JOIN = re.compile(  # where a joiner goes
    r"(?<=[@\uff20\ufe6b#\uff03\ufe5f])"  # after @ and #, ASCII and full-width
    r"| (?<=:)(?=\S)"  # in "http://", "mailto:x", ":emoji:"
    r"| (?i: (?<=www)(?=\.) | (?<=gh)(?=-\d) )",  # in "www." and "GH-1"
    re.X,
)
_SYNTAX = re.compile(r"[\\`*~\[\]<&|$] | (?<![A-Za-z0-9])_ | _(?![A-Za-z0-9])", re.X)
_BLOCK_START = re.compile(  # the first character, where it would start a block
    r"^(?=[!-/:-@\[-`{-~])(?!\\)"  # punctuation not escaped yet: # > - + = ...
    r"| ^(\d{1,9})(?=[.)](?:[ \t]|$))",  # the "." or ")" of "1." or "1)"
    re.X,
)


def escape(text: object, limit: int = 400) -> str:
    """`text` (made a string, cut to `limit` characters with "…") as inert one-line Markdown."""
    text = str(text)
    cut = len(text) > limit
    text = _BREAK.sub(" ", text[:limit] if cut else text)
    text = _JOIN.sub(JOINER, _BIDI.sub("", text).strip(" \t"))
    text = _SYNTAX.sub(r"\\\g<0>", text)
    text = _BLOCK_START.sub(lambda m: (m[1] or "") + "\\", text, count=1)
    return text + "…" if cut else text


def code_block(text: str, info: str = "") -> str:
    """`text` verbatim in a fenced code block whose fence is longer than any run of backticks
    in it, so no line of the text can close it (a `~~~` line cannot close a ``` fence)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{info}\n{body}{fence}"
