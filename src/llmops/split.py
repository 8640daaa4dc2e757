"""Deduplication and the deterministic, stratified train/val/test split.

Dedup runs on the cleaned, redacted input fields. Of the rows that share their inputs one
is kept and the others are rejected: `duplicate` when the cleaned inputs are the same
strings (so raw copies that differ only in spacing or Unicode form count here, as do
inputs that differ only in the PII they carried), `near_duplicate` when they differ only in
letter case. A pinned row beats an unpinned one (test, then val, then train), whatever the
file order, so a pinned test set stays whole; among equals the first (files in name order,
then row order) is kept. Of the rows left, rows that share an id are settled the same way:
one is kept, the others are rejected as `duplicate_id` (reports match examples by id).
The split is stratified by the first label output field (one group when there is none):
within each label, unpinned rows are ordered by a seeded hash of their inputs and the first
`test_fraction` go to test, the next `val_fraction` to val, the rest to train. Hashing
(rather than shuffling) keeps a row in its split when other rows are added or removed, so
a data pull request moves only the rows it touches.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from llmops.params import SPLITS
from llmops.records import Record, Rejection, dedupe_key
from llmops.task import Task

PIN_ORDER = {"test": 0, "val": 1, "train": 2, None: 3}  # who wins among duplicates


def input_text(record: Record, task: Task) -> str:
    """The row's inputs as one string (what dedupe and the split hash compare)."""
    return "\n".join(record.fields[f.name] for f in task.inputs)


def pinned_first(records: list[Record]) -> list[int]:
    """Indices of `records`, pinned ones first (test, val, train), else in file order."""
    return sorted(range(len(records)), key=lambda i: PIN_ORDER[records[i].pin])


def dedupe(records: Iterable[Record], task: Task) -> tuple[list[Record], list[Rejection]]:
    """Keep one row per input (pinned rows first); reject the other exact and near copies."""
    records = list(records)
    order = pinned_first(records)
    exact: dict[str, Record] = {}
    near: dict[str, Record] = {}
    keep: set[int] = set()
    rejected: list[Rejection] = []
    for i in order:
        r = records[i]
        text = input_text(r, task)
        key = dedupe_key(text)
        if text in exact:
            reason, detail = "duplicate", f"same inputs as {exact[text].where}"
        elif key in near:
            reason = "near_duplicate"
            detail = f"same inputs as {near[key].where} up to case/whitespace"
        else:
            exact[text] = near[key] = r
            keep.add(i)
            continue
        raw = json.dumps(r.row(), ensure_ascii=False)
        rejected.append(Rejection(r.where, reason, detail, raw))
    return [r for i, r in enumerate(records) if i in keep], rejected


def unique_ids(records: list[Record]) -> tuple[list[Record], list[Rejection]]:
    """Keep one row of each id (pinned rows first, like dedupe); reject the others as
    `duplicate_id`: reports and gates match examples by id, so two may not share one."""
    order = pinned_first(records)
    first: dict[str, Record] = {}
    keep: set[int] = set()
    rejected: list[Rejection] = []
    for i in order:
        r = records[i]
        if r.id in first:
            detail = f"id {r.id!r} is already used by {first[r.id].where}"
            rejected.append(
                Rejection(r.where, "duplicate_id", detail, json.dumps(r.row(), ensure_ascii=False))
            )
        else:
            first[r.id] = r
            keep.add(i)
    return [r for i, r in enumerate(records) if i in keep], rejected


def _rank(seed: int, record: Record, task: Task) -> str:
    key = dedupe_key(input_text(record, task))
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def assign_splits(
    records: Iterable[Record], task: Task, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Record]]:
    """Split into {"train", "val", "test"}; each list keeps the input order."""
    chosen: dict[str, str] = {}  # record.where -> split
    groups: dict[str, list[Record]] = defaultdict(list)
    strata = task.labels[0].name if task.labels else None
    records = list(records)
    for r in records:
        if r.pin:
            chosen[r.where] = r.pin
        else:
            groups[r.fields[strata] if strata else ""].append(r)
    for group in groups.values():
        ordered = sorted(group, key=lambda r: _rank(seed, r, task))
        n_test = round(len(ordered) * test_fraction)
        n_val = round(len(ordered) * val_fraction)
        for i, r in enumerate(ordered):
            chosen[r.where] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for r in records:
        splits[chosen[r.where]].append(r)
    check_disjoint(splits, task)
    return splits


def check_disjoint(splits: dict[str, list[Record]], task: Task) -> None:
    """Fail if any input (up to case/whitespace) appears in two splits."""
    seen: dict[str, str] = {}
    for name, rows in splits.items():
        for r in rows:
            other = seen.setdefault(dedupe_key(input_text(r, task)), name)
            if other != name:
                raise ValueError(f"{r.where}: inputs are in both {other} and {name} splits")
