"""Unicode clean-up shared by prep, init, redaction, the params check and the service.

`normalize(text, form)` is how every text field is cleaned: the Unicode normal form (NFC or
NFKC), control and blank-looking characters (`BLANKS`) as spaces, invisible characters
(`INVISIBLE`) removed, whitespace collapsed, stripped; `unhide` is its middle step, which
redaction applies to any text before looking for PII. `label_key(value)` is the form label
values are compared in: `normalize(value, "NFC")`, so NFC and NFD spellings, stray spaces,
zero-width and direction characters do not make two labels of one; with `fold_case`, case
is ignored too.
Standard library only: `llmops.config.params` (a leaf) checks declared labels with it.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode's Default_Ignorable_Code_Point list (DerivedCoreProperties.txt): characters that
# render as nothing, so they could hide PII from the patterns or split one label in two
# (soft hyphen, grapheme joiner, zero-width and direction marks, word joiner, Hangul
# fillers, BOM, tags...). Removed wherever they are, but the emoji builders: a run of
# zero-width joiners, variation selectors or tags right after a symbol (an emoji: a red
# heart's U+FE0F, a family's joiners, a subdivision flag's tags) stays unless a letter or
# digit follows; after a letter, digit or space, or at the text's start, it goes (a keycap
# digit keeps its U+20E3, an ideograph its base form).
# Each maximal run is found once and judged by its neighbours (a pattern that backtracked
# over long runs would take minutes on a row of joiners).
_HIDDEN = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200c\u200e\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e001f\U000e0080-\U000e0fff"
)
_BUILDERS = "\u200d\ufe00-\ufe0f\U000e0020-\U000e007f"
INVISIBLE = re.compile(f"[{_HIDDEN}{_BUILDERS}]+")  # a run of invisible characters
_HIDDEN_RUN = re.compile(f"[{_HIDDEN}]+")
_WORD = re.compile(r"\w")
_WORD_OR_SPACE = re.compile(r"[\w\s]")
# Characters that are not whitespace to Python but print as a blank (braille pattern blank,
# musical null notehead): spaces, so "4111\u28001111" reads as two digit groups.
BLANKS = "\u2800\U0001d159"
_AS_SPACE = dict.fromkeys(map(ord, BLANKS), " ")
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # control characters that are not whitespace
SPACE = re.compile(r"\s+")


def unhide(text: str) -> str:
    """Blank-looking characters as spaces, then invisible ones removed (see INVISIBLE)."""
    if text.isascii():  # none of them is ASCII; most text is, and this is 100x cheaper
        return text
    if any(c in text for c in BLANKS):
        text = text.translate(_AS_SPACE)  # first: a blank before a builder would shield it

    def judged(run: re.Match[str]) -> str:
        start, end = run.span()
        before, after = text[start - 1 : start], text[end : end + 1]
        if not before or _WORD_OR_SPACE.match(before) or _WORD.match(after):
            return ""  # not building an emoji: all of it goes
        return _HIDDEN_RUN.sub("", run.group())  # after a symbol: the builders stay

    return INVISIBLE.sub(judged, text)


def normalize(text: str, form: str) -> str:
    """Unicode normal form, control and blank-looking characters as spaces, invisible ones
    (zero-width space, soft hyphen, direction marks) removed, whitespace collapsed to single
    spaces, stripped. Cleaning clean text changes nothing, which labels rely on (a declared
    label is its own `label_key`): controls go first, so that none is taken for the symbol
    an emoji builder follows, and the normal form and the removal repeat until neither
    changes (removing a character may join a letter and its accent; the form may turn a
    symbol into a letter, after which a builder goes)."""
    text = CONTROL.sub(" ", text)
    if not text.isascii():  # ASCII is in every normal form and holds nothing invisible
        for _ in range(4):  # two passes settle what was found; the bound is a guard
            cleaned = unicodedata.normalize(form, unhide(text))
            if cleaned == text:
                break
            text = cleaned
    return SPACE.sub(" ", text).strip()


def dedupe_key(text: str) -> str:
    """Key under which two texts count as the same (case and whitespace ignored)."""
    return SPACE.sub(" ", text.casefold()).strip()


def label_key(value: str, fold_case: bool = False) -> str:
    """The form two label values are compared in (NFC, cleaned; case-folded on request)."""
    key = normalize(value, "NFC")
    return key.casefold() if fold_case else key
