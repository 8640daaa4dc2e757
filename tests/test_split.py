"""Dedup keeps the first copy; the split is seeded, stratified, stable and disjoint."""

from __future__ import annotations

from collections import Counter

import pytest

from llmops.records import Ticket
from llmops.split import assign_splits, check_disjoint, dedupe


def make(n: int, category: str = "billing", pin: str | None = None, start: int = 0) -> list[Ticket]:
    return [
        Ticket(
            f"T{i}", f"message number {i} about {category}", category, "low", "ok", pin, f"f:{i}"
        )
        for i in range(start, start + n)
    ]


def test_dedupe_keeps_first_and_names_it():
    a, b = make(2)
    exact = Ticket("X", a.message, "refund", "high", "other reply", None, "g:9")
    near = Ticket("Y", "  MESSAGE number 1   ABOUT billing ", "billing", "low", "ok", None, "g:10")
    kept, rejected = dedupe([a, b, exact, near])
    assert kept == [a, b]
    assert [(r.where, r.reason, r.detail) for r in rejected] == [
        ("g:9", "duplicate", "same message as f:0"),
        ("g:10", "near_duplicate", "same message as f:1 up to case/whitespace"),
    ]
    assert '"id": "X"' in rejected[0].raw  # the rejected row itself is kept


def test_split_is_deterministic_and_depends_on_seed():
    rows = make(200) + make(100, "refund", start=200)
    first = assign_splits(rows, 0.1, 0.2, seed=7)
    again = assign_splits(list(reversed(rows)), 0.1, 0.2, seed=7)
    other = assign_splits(rows, 0.1, 0.2, seed=8)
    ids = lambda s: {name: sorted(t.id for t in part) for name, part in s.items()}  # noqa: E731
    assert ids(first) == ids(again)
    assert ids(first) != ids(other)


def test_split_is_stratified_by_category():
    rows = make(200) + make(100, "refund", start=200) + make(10, "shipping", start=300)
    splits = assign_splits(rows, 0.1, 0.2, seed=1)
    counts = {name: Counter(t.category for t in part) for name, part in splits.items()}
    assert counts["val"] == {"billing": 20, "refund": 10, "shipping": 1}
    assert counts["test"] == {"billing": 40, "refund": 20, "shipping": 2}
    assert counts["train"] == {"billing": 140, "refund": 70, "shipping": 7}


def test_adding_rows_moves_few_existing_rows():
    rows = make(500)
    before = assign_splits(rows, 0.1, 0.0, seed=3)
    after = assign_splits(rows + make(50, start=500), 0.1, 0.0, seed=3)
    where = lambda s: {t.id: name for name, part in s.items() for t in part}  # noqa: E731
    old, new = where(before), where(after)
    moved = sum(old[i] != new[i] for i in old)
    assert moved <= 10  # a reshuffle would move about 90 of 500


def test_pinned_rows_stay_pinned_and_are_not_counted_in_fractions():
    pinned = make(30, pin="test", start=1000)
    splits = assign_splits(make(100) + pinned, 0.1, 0.0, seed=0)
    assert [t.id for t in splits["test"]] == [t.id for t in pinned]
    assert len(splits["val"]) == 10 and len(splits["train"]) == 90


def test_check_disjoint_catches_a_message_in_two_splits():
    a = make(1)[0]
    twin = Ticket("Z", a.message.upper(), "billing", "low", "ok", None, "h:1")
    with pytest.raises(ValueError, match=r"h:1: message is in both train and test splits"):
        check_disjoint({"train": [a], "val": [], "test": [twin]})
