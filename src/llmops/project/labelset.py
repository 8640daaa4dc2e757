"""A label column's values as `make init` declares them: cleaned, merged and checked.

`label_set(column, counts, fold)` turns the raw values of a column (with their row counts)
into the labels params.yaml declares: each in `label_key` form, the form prep compares a
row's label in (NFC, no control or invisible characters, spaces collapsed), so NFC and NFD
spellings, stray spaces, zero-width joiners and direction marks do not make two labels of
one; values that become equal are merged, and each merge is reported; values empty once
cleaned are left out, like empty cells. Values that differ only in letter case are refused
(prep would read them as two labels) unless `fold` is asked for: then they are merged
under their most frequent spelling and prep matches labels up to case
(`prep.label_case: fold`). Values that hold personal data (`llmops.data.redact` finds it) are
refused: label values are written to params.yaml and to every report.

`check_learnable` refuses a label column most of whose values have too few rows to be
learned (fewer than `MIN_ROWS`) and split, and warns when some do: refused, not just
warned about, because prep's stratified split then leaves val or test without most labels
(or empty), the advice prep can give at that point (raise the fractions) cannot help, and
the choice that does (free text, grouped values, more rows) is init's to make.
`empty_splits` names the splits prep's stratified split would leave empty.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from llmops.config.textnorm import label_key
from llmops.data.records import declared_label
from llmops.data.split import share
from llmops.project.declaration import InitError

MIN_ROWS = 5  # fewer rows than this: too few to learn a label from, and to split
SHOWN = 5  # values named in one message


@dataclass(frozen=True)
class LabelSet:
    """The declared labels (sorted) with their row counts, and how raw values map to them."""

    values: tuple[str, ...]
    counts: tuple[int, ...]
    merges: tuple[str, ...]  # "merged 'Billing ' into 'Billing' (3 rows)", most rows first
    fold: bool

    def tally(self, raw: Counter[str]) -> Counter[str]:
        """Rows per declared value, from raw values and their counts (others left out),
        matched as prep will match them."""
        out: Counter[str] = Counter()
        case = "fold" if self.fold else "exact"
        for value, n in raw.items():
            declared = declared_label(self.values, value, case)
            if declared is not None:
                out[declared] += n
        return out


def label_set(column: str, counts: Counter[str], fold: bool) -> LabelSet:
    """The labels of a column (see the module); InitError for case-only differences
    without `fold`, and for personal data."""
    rows: Counter[str] = Counter()  # cleaned value -> rows
    variants: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for raw, n in counts.items():
        value = label_key(raw)  # its own key, as params.yaml's check demands
        if value:
            rows[value] += n
            variants[value].append((raw, n))
    _refuse_personal_data(column, variants)  # first: the messages below show values
    by_case: dict[str, list[str]] = defaultdict(list)
    for value in sorted(rows, key=lambda v: (-rows[v], v)):  # most rows first
        by_case[value.casefold()].append(value)
    clashes = [spellings for spellings in by_case.values() if len(spellings) > 1]
    if clashes and not fold:
        shown = "; ".join(
            " / ".join(f"{v!r:.40} ({rows[v]} rows)" for v in spellings)
            for spellings in clashes[:SHOWN]
        )
        more = f" and {len(clashes) - SHOWN} more" if len(clashes) > SHOWN else ""
        raise InitError(
            f"column {column!r} has values that differ only in letter case: {shown}{more}. "
            "If each is one label, run again with LABEL_CASE=fold (--label-case fold: they "
            "are merged and prep matches labels up to case); if they are different labels, "
            "rename them in the data so that they differ in more than case"
        )
    declared = {v: spellings[0] for spellings in by_case.values() for v in spellings}
    merges = sorted(
        (
            (n, raw, declared[value])
            for value, found in variants.items()
            for raw, n in found
            if raw != declared[value]
        ),
        key=lambda m: (-m[0], m[1]),
    )
    values = tuple(sorted(set(declared.values())))
    totals: Counter[str] = Counter()
    for value, n in rows.items():
        totals[declared[value]] += n
    shown = tuple(
        f"merged {_shown(raw)} into {to!r:.60} ({n} row{'s' * (n != 1)})" for n, raw, to in merges
    )
    return LabelSet(values, tuple(totals[v] for v in values), shown, fold)


def _shown(raw: str) -> str:
    """A raw value for the summary; escaped when it is not in NFC form, where it would look
    the same as the value it was merged into."""
    return f"{ascii(raw) if unicodedata.normalize('NFC', raw) != raw else repr(raw):.60}"


def _refuse_personal_data(column: str, variants: dict[str, list[tuple[str, int]]]) -> None:
    """InitError naming the kinds of personal data in the values, never the values."""
    from llmops.data.redact import KINDS, redact

    found: Counter[str] = Counter()
    holding = 0
    for value, spellings in variants.items():
        kinds: Counter[str] = Counter()
        for text in {value, *(raw for raw, _ in spellings)}:
            kinds |= redact(text, KINDS)[1]
        holding += bool(kinds)
        found.update(kinds.keys())
    if found:
        named = ", ".join(f"{kind} in {n}" for kind, n in sorted(found.items()))
        raise InitError(
            f"column {column!r} holds personal data in its values ({named} of "
            f"{len(variants)} values): label values are written to params.yaml and to every "
            "report, so init does not declare them. Map them to values that name no one "
            "(a team, a role) or leave the column out (LABELS=<another column>)"
        )


def check_learnable(column: str, labels: LabelSet, in_data: Counter[str], where: str) -> str:
    """InitError when most labels have fewer than MIN_ROWS rows in the training data; a
    warning (empty when none) when some do. `in_data`: rows per declared value in DATA."""
    rare = sorted((v for v in labels.values if in_data[v] < MIN_ROWS), key=lambda v: in_data[v])
    if 2 * len(rare) > len(labels.values):
        raise InitError(
            f"{where}: column {column!r} cannot be learned as a label: {len(rare):,} of its "
            f"{len(labels.values):,} values have fewer than {MIN_ROWS} rows, too few to learn "
            "a label from and to give val and test a share of each (prep splits every label's "
            f"rows). What would work: generate it as free text (TEXTS={column}, with LABELS "
            "naming another column or none), group rare values into fewer labels (e.g. one "
            "'other') before init, or add rows for each value"
        )
    if not rare:
        return ""
    shown = ", ".join(f"{v!r:.40} ({in_data[v]})" for v in rare[:SHOWN])
    more = ", ..." if len(rare) > SHOWN else ""
    return (
        f"warning: {len(rare)} of {len(labels.values)} values of {column!r} have fewer than "
        f"{MIN_ROWS} rows in {where}: {shown}{more}; the model sees few examples of them and "
        "val and test may hold none (group them, or add rows)"
    )


def empty_splits(groups: Iterable[int], fractions: dict[str, float]) -> list[str]:
    """The splits that prep's stratified split gives no row: each group (rows per label of
    the first label field, or all rows) gives a split its `llmops.data.split.share` of rows."""
    groups = list(groups)
    return [split for split, f in fractions.items() if sum(share(n, f) for n in groups) == 0]
