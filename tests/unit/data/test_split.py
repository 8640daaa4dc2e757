"""Dedup keeps one row per input (a pinned row beats an unpinned one, whatever the file
order), and for a task with text outputs the rows that say something else as further
references; the split is by input, seeded, stratified by the first label field, stable
and disjoint. The rows go through a real RowStore (SQLite in a temporary folder), as in
prep."""

from __future__ import annotations

import dataclasses
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


def dedupe(
    records: list[Record], task: Task, references: bool = False
) -> tuple[list[Record], list[Rejection]]:
    """The rows dedupe keeps and the ones it rejects, as lists."""
    with stored(records, task) as store:
        split.dedupe(store, references)
        store.db.execute("UPDATE rows SET split = 'train' WHERE status = ?", (KEPT,))
        return list(store.records("train")), list(store.rejections())


def assign_splits(
    records: list[Record], task: Task, val: float, test: float, seed: int, references=False
) -> dict[str, list[Record]]:
    """The splits of `records` (deduped first, as prep does)."""
    with stored(records, task, seed) as store:
        split.split_store(store, val, test, references)
        return {name: list(store.records(name)) for name in SPLITS}


def make(n: int, topic: str = "price", pin: str | None = None, start: int = 0) -> list[Record]:
    fields = {"topic": topic, "sentiment": "neutral", "summary": "ok"}
    return [
        Record(f"R{i}", {"text": f"review number {i} about {topic}", **fields}, pin, f"f:{i}")
        for i in range(start, start + n)
    ]


def twin(record: Record, text: str, where: str, pin: str | None = None, **fields) -> Record:
    return Record("X", {**record.fields, "text": text, **fields}, pin, where)


def said_of(record: Record, *rows: tuple[str, str | None, str]) -> list[Record]:
    """Rows with `record`'s inputs, one per (place, pin, summary), each with its place as id."""
    text = record.fields["text"]
    return [
        dataclasses.replace(twin(record, text, where, pin, summary=said), id=where)
        for where, pin, said in rows
    ]


def test_dedupe_keeps_first_and_names_it(task):
    a, b = make(2)
    exact = twin(a, a.fields["text"], "g:9", topic="delivery")
    near = twin(b, "  REVIEW number 1   ABOUT price ", "g:10")
    kept, rejected = dedupe([a, b, exact, near], task)
    assert kept == [a, b]
    assert [(r.where, r.reason, r.detail) for r in rejected] == [
        ("g:9", "duplicate", "same inputs as f:0 with other labels"),
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


def test_rows_that_share_inputs_but_say_other_text_are_references(task):
    (a,) = make(1)
    text = a.fields["text"]
    rows = [
        a,
        twin(a, text, "g:1", summary="another way to say it"),
        twin(a, text.upper(), "g:2", summary="Another  WAY to say it"),  # case: the same
        twin(a, text, "g:3", summary="a third", topic="delivery"),  # a conflicting label
        twin(a, text, "g:4"),  # the leader again, inputs and outputs
    ]
    kept, rejected = dedupe(rows, task, references=True)
    assert [r.where for r in kept] == ["f:0", "g:1"]
    assert [(r.where, r.reason, r.detail) for r in rejected] == [
        ("g:2", "near_duplicate", "same inputs and outputs as g:1 up to case/whitespace"),
        ("g:3", "duplicate", "same inputs as f:0 with other labels"),
        ("g:4", "duplicate", "same inputs and outputs as f:0"),
    ]
    assert dedupe(rows, task)[0] == [a]  # a task without text outputs: one row per input


def test_references_follow_their_inputs_pin_and_one_pinned_elsewhere_is_refused(task):
    (a,) = make(1)
    lead, loose, elsewhere = said_of(
        a,
        ("test.csv:2", "test", "pinned"),
        ("f:5", None, "unpinned, so it follows"),
        ("train.csv:7", "train", "pinned to train"),
    )
    splits = assign_splits([a, loose, elsewhere, lead], task, 0.1, 0.1, seed=1, references=True)
    assert {r.where for r in splits["test"]} == {"test.csv:2", "f:0", "f:5"}
    assert splits["train"] == splits["val"] == []
    with stored([a, elsewhere, lead], task) as store:
        split.dedupe(store, references=True)
        (refused,) = list(store.rejections())
    assert refused.where == "train.csv:7"
    assert refused.detail == "same inputs as test.csv:2, pinned to test"


def test_every_row_of_an_input_lands_in_one_split_and_inputs_are_stratified(task):
    rows, inputs = [], {}
    for i in range(120):  # 120 inputs, 1 to 9 references each, two labels
        topic = "price" if i % 3 else "delivery"
        count = 1 + (i * 7) % 9
        for j in range(count):
            fields = {"text": f"input {i}", "topic": topic, "sentiment": "neutral",
                      "summary": f"reference {j} of input {i}"}  # fmt: skip
            rows.append(Record(f"R{i}-{j}", fields, None, f"f:{len(rows)}"))
        inputs[f"input {i}"] = (topic, count)
    splits = assign_splits(rows, task, 0.1, 0.2, seed=3, references=True)
    assert sum(map(len, splits.values())) == len(rows) == 600  # no reference lost
    where = {}
    for name, kept in splits.items():
        for r in kept:
            assert where.setdefault(r.fields["text"], name) == name  # one split per input
    for name, fraction in (("test", 0.2), ("val", 0.1)):
        for topic, n in (("price", 80), ("delivery", 40)):
            chosen = {t for t, s in where.items() if s == name and inputs[t][0] == topic}
            assert len(chosen) == split.share(n, fraction)  # a share of inputs, not rows
        given = [t for t, s in where.items() if s == name]
        assert sum(1 for r in splits[name]) == sum(inputs[t][1] for t in given)


def test_references_that_carry_their_inputs_id_are_numbered_and_other_clashes_refused(task):
    (a,) = make(1)
    (b,) = make(1, start=1)
    rows = [
        a,
        dataclasses.replace(twin(a, a.fields["text"], "g:1", summary="second"), id=a.id),
        dataclasses.replace(twin(a, a.fields["text"], "g:2", summary="third"), id=a.id),
        dataclasses.replace(b, id=a.id),  # another input with that id: a real clash
    ]
    splits = assign_splits(rows, task, 0.0, 0.0, seed=1, references=True)
    assert [r.id for r in splits["train"]] == ["R0", "R0.2", "R0.3"]
    with stored(rows, task) as store:
        split.split_store(store, 0.0, 0.0, references=True)
        (clash,) = list(store.rejections())
    assert (clash.where, clash.reason) == ("f:1", "duplicate_id")


def test_a_row_refused_for_its_pin_does_not_hide_a_later_reference_saying_the_same(task):
    (a,) = make(1)
    lead, elsewhere, loose = said_of(
        a,
        ("p:1", "test", "the leader"),
        ("p:2", "val", "said twice"),  # pinned elsewhere: refused
        ("p:3", None, "said twice"),  # unpinned: a reference of the test input
    )
    with stored([lead, elsewhere, loose], task) as store:
        split.dedupe(store, references=True)
        refused = [(r.where, r.detail) for r in store.rejections()]
    assert refused == [("p:2", "same inputs as p:1, pinned to test")]


def test_two_text_fields_are_compared_field_by_field(task):
    from llmops.config.params import FieldParams

    text = FieldParams("text")
    two = Task.from_params(TaskParams("p.jinja", {"text": text}, {"summary": text, "note": text}))
    (a,) = make(1)
    first = dataclasses.replace(a, fields={"text": "x", "summary": "a b", "note": "c"})
    moved = dataclasses.replace(first, id="B", where="f:2", fields={**first.fields,
                                "summary": "a", "note": "b c"})  # fmt: skip
    kept, rejected = dedupe([first, moved], two, references=True)
    assert [r.where for r in kept] == ["f:0", "f:2"] and not rejected


def test_a_numbered_reference_never_takes_the_id_of_a_row_that_has_it(task):
    (a,) = make(1)
    (b,) = make(1, start=1)
    rows = [
        a,
        dataclasses.replace(twin(a, a.fields["text"], "g:1", summary="second"), id=a.id),
        dataclasses.replace(b, id=f"{a.id}.2"),  # its own id, which numbering would give
    ]
    with stored(rows, task) as store:
        split.split_store(store, 0.0, 0.0, references=True)
        (clash,) = list(store.rejections())
        kept = {r.where: r.id for r in store.records("train")}
    assert kept == {"f:0": "R0", "f:1": "R0.2"}
    assert (clash.where, clash.reason) == ("g:1", "duplicate_id")


def test_each_input_is_written_leader_first_where_it_was_first_read(task):
    (a,) = make(1)
    (b,) = make(1, start=1)
    text = a.fields["text"]
    early = dataclasses.replace(twin(a, text, "a:1", summary="an early reference"), id="E")
    pinned = dataclasses.replace(twin(a, text, "z:1", pin="test", summary="pinned"), id="L")
    splits = assign_splits([early, b, pinned], task, 0.0, 0.0, seed=1, references=True)
    assert [r.where for r in splits["test"]] == ["z:1", "a:1"]  # the leader first
    assert [r.where for r in splits["train"]] == ["f:1"]
