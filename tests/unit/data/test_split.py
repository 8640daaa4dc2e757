"""Dedup keeps one row per input (a pinned row beats an unpinned one, whatever the file
order); the split is seeded, stratified by the first label field, stable and disjoint. The
rows go through a real RowStore (SQLite in a temporary folder), as in prep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from llmops.config.params import SPLITS, TaskParams
from llmops.config.task import Task
from llmops.data import split
from llmops.data.records import Record, Rejection
from llmops.data.rowstore import KEPT, RowStats, RowStore


@contextmanager
def stored(records: list[Record], task: Task, seed: int = 0) -> Iterator[RowStore]:
    with RowStore.temporary() as store:
        for r in records:
            store.add(r, split.keys(r, task, seed), Counter(), RowStats((), ()))
        store.flush()
        yield store


def dedupe(records: list[Record], task: Task) -> tuple[list[Record], list[Rejection]]:
    """The rows dedupe keeps and the ones it rejects, as lists."""
    with stored(records, task) as store:
        split.dedupe(store)
        store.db.execute("UPDATE rows SET split = 'train' WHERE status = ?", (KEPT,))
        return list(store.records("train")), list(store.rejections())


def assign_splits(
    records: list[Record], task: Task, val: float, test: float, seed: int
) -> dict[str, list[Record]]:
    """The splits of `records` (deduped first, as prep does)."""
    with stored(records, task, seed) as store:
        split.split_store(store, val, test)
        return {name: list(store.records(name)) for name in SPLITS}


def make(n: int, topic: str = "price", pin: str | None = None, start: int = 0) -> list[Record]:
    fields = {"topic": topic, "sentiment": "neutral", "summary": "ok"}
    return [
        Record(f"R{i}", {"text": f"review number {i} about {topic}", **fields}, pin, f"f:{i}")
        for i in range(start, start + n)
    ]


def twin(record: Record, text: str, where: str, pin: str | None = None, **fields) -> Record:
    return Record("X", {**record.fields, "text": text, **fields}, pin, where)


def test_dedupe_keeps_first_and_names_it(task):
    a, b = make(2)
    exact = twin(a, a.fields["text"], "g:9", topic="delivery")
    near = twin(b, "  REVIEW number 1   ABOUT price ", "g:10")
    kept, rejected = dedupe([a, b, exact, near], task)
    assert kept == [a, b]
    assert [(r.where, r.reason, r.detail) for r in rejected] == [
        ("g:9", "duplicate", "same inputs as f:0"),
        ("g:10", "near_duplicate", "same inputs as f:1 up to case/whitespace"),
    ]
    assert '"id": "X"' in rejected[0].raw  # the rejected row itself is kept


def test_a_pinned_duplicate_wins_whatever_the_file_order(task):
    # The unpinned copy comes first (an earlier file); the pinned test row is kept anyway,
    # so a pinned test set stays whole.
    train_copy = make(1)[0]
    pinned = twin(train_copy, train_copy.fields["text"], "test.csv:2", pin="test")
    for order in ([train_copy, pinned], [pinned, train_copy]):
        kept, rejected = dedupe(order, task)
        assert kept == [pinned]
        assert rejected[0].where == "f:0" and "same inputs as test.csv:2" in rejected[0].detail
    val = twin(train_copy, train_copy.fields["text"], "v:1", pin="val")
    assert dedupe([train_copy, val, pinned], task)[0] == [pinned]  # test before val


def test_split_is_deterministic_and_depends_on_seed(task):
    rows = make(200) + make(100, "quality", start=200)
    first = assign_splits(rows, task, 0.1, 0.2, seed=7)
    again = assign_splits(list(reversed(rows)), task, 0.1, 0.2, seed=7)
    other = assign_splits(rows, task, 0.1, 0.2, seed=8)
    ids = lambda s: {name: sorted(r.id for r in part) for name, part in s.items()}  # noqa: E731
    assert ids(first) == ids(again)
    assert ids(first) != ids(other)


def test_split_is_stratified_by_the_first_label_field(task):
    rows = make(200) + make(100, "quality", start=200) + make(10, "delivery", start=300)
    splits = assign_splits(rows, task, 0.1, 0.2, seed=1)
    counts = {name: Counter(r.fields["topic"] for r in part) for name, part in splits.items()}
    assert counts["val"] == {"price": 20, "quality": 10, "delivery": 1}
    assert counts["test"] == {"price": 40, "quality": 20, "delivery": 2}
    assert counts["train"] == {"price": 140, "quality": 70, "delivery": 7}


def test_a_task_without_labels_splits_as_one_group():
    from llmops.config.params import FieldParams

    text = FieldParams("text")
    task = Task.from_params(TaskParams("p.jinja", {"text": text}, {"summary": text}))
    rows = [Record(f"R{i}", {"text": f"t{i}", "summary": "s"}, None, f"f:{i}") for i in range(50)]
    splits = assign_splits(rows, task, 0.1, 0.2, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 35, "val": 5, "test": 10}


def test_adding_rows_moves_few_existing_rows(task):
    rows = make(500)
    before = assign_splits(rows, task, 0.1, 0.0, seed=3)
    after = assign_splits(rows + make(50, start=500), task, 0.1, 0.0, seed=3)
    where = lambda s: {r.id: name for name, part in s.items() for r in part}  # noqa: E731
    old, new = where(before), where(after)
    moved = sum(old[i] != new[i] for i in old)
    assert moved <= 10  # a reshuffle would move about 90 of 500


def test_pinned_rows_stay_pinned_and_are_not_counted_in_fractions(task):
    pinned = make(30, pin="test", start=1000)
    splits = assign_splits(make(100) + pinned, task, 0.1, 0.0, seed=0)
    assert [r.id for r in splits["test"]] == [r.id for r in pinned]
    assert len(splits["val"]) == 10 and len(splits["train"]) == 90


def test_check_disjoint_catches_an_input_in_two_splits(task):
    a = make(1)[0]
    upper = twin(a, a.fields["text"].upper(), "h:1")
    with stored([a, upper], task) as store:  # both kept as if dedupe had not run
        store.db.execute("UPDATE rows SET status = ?, split = 'train'", (KEPT,))
        store.db.execute("UPDATE rows SET split = 'test' WHERE place = 'h:1'")
        with pytest.raises(ValueError, match=r"h:1: its inputs are in two splits"):
            split.check_disjoint(store)
