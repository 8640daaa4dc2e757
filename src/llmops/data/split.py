"""Deduplication and the deterministic, stratified train/val/test split, over a RowStore.

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

Rows are compared by hashes (`Keys`, computed as each row is read) in SQL over the
`llmops.data.rowstore` file, so memory does not grow with the number of rows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from llmops.config.task import Task
from llmops.data.records import Record, dedupe_key
from llmops.data.rowstore import KEPT, RowStore

PIN_ORDER = {"test": 0, "val": 1, "train": 2, None: 3}  # who wins among duplicates


@dataclass(frozen=True)
class Keys:
    """What dedupe and the split compare of a row, as hashes and its pin."""

    exact: bytes  # the cleaned inputs
    near: bytes  # the inputs up to case and whitespace
    rank: str  # seeded hash ordering a label's unpinned rows
    strata: str  # the first label output field's value ('' when there is none)
    pin_order: int


def share(rows: int, fraction: float) -> int:
    """The rows of a label group a split gets: its fraction of them, rounded (so a group of
    fewer than 1 / (2 x fraction) rows gives none)."""
    return round(rows * fraction)


def input_text(record: Record, task: Task) -> str:
    """The row's inputs as one string (what dedupe and the split hash compare)."""
    return "\n".join(record.fields[f.name] for f in task.inputs)


def keys(record: Record, task: Task, seed: int) -> Keys:
    """The row's Keys for a split seeded with `seed`."""
    text = input_text(record, task)
    near = dedupe_key(text)
    rank = hashlib.sha256(f"{seed}\0{near}".encode()).hexdigest()
    strata = record.fields[task.labels[0].name] if task.labels else ""
    return Keys(_digest(text), _digest(near), rank, strata, PIN_ORDER[record.pin])


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def dedupe(store: RowStore) -> None:
    """Keep one row per input (pinned rows first); mark the other exact and near copies."""
    store.flush()
    db = store.db
    db.execute("CREATE INDEX rows_near ON rows (near, pin_order, seq)")
    db.execute("""
        CREATE TEMP TABLE first_of AS
        SELECT near, seq, place, exact FROM (
            SELECT near, seq, place, exact,
                   ROW_NUMBER() OVER (PARTITION BY near ORDER BY pin_order, seq) AS n
            FROM rows)
        WHERE n = 1""")
    db.execute("CREATE UNIQUE INDEX temp.first_near ON first_of (near)")
    db.execute(
        """
        UPDATE rows SET
            status = CASE WHEN rows.seq = f.seq THEN ?
                          WHEN rows.exact = f.exact THEN 'duplicate'
                          ELSE 'near_duplicate' END,
            detail = CASE WHEN rows.seq = f.seq THEN NULL
                          WHEN rows.exact = f.exact THEN 'same inputs as ' || f.place
                          ELSE 'same inputs as ' || f.place || ' up to case/whitespace' END
        FROM first_of AS f WHERE rows.near = f.near""",
        (KEPT,),
    )
    db.execute("DROP TABLE first_of")


def unique_ids(store: RowStore) -> None:
    """Of the kept rows, keep one of each id (pinned rows first, like dedupe); mark the
    others `duplicate_id`: reports and gates match examples by id, so two may not share one."""
    db = store.db
    db.execute(
        """
        CREATE TEMP TABLE id_taken AS
        SELECT seq, first_place FROM (
            SELECT seq,
                   ROW_NUMBER() OVER (PARTITION BY id ORDER BY pin_order, seq) AS n,
                   FIRST_VALUE(place) OVER (PARTITION BY id ORDER BY pin_order, seq)
                       AS first_place
            FROM rows WHERE status = ?)
        WHERE n > 1""",
        (KEPT,),
    )
    db.execute("""
        UPDATE rows SET status = 'duplicate_id',
            detail = 'id ' || py_repr(rows.id) || ' is already used by ' || t.first_place
        FROM id_taken AS t WHERE rows.seq = t.seq""")
    db.execute("DROP TABLE id_taken")


def assign_splits(store: RowStore, val_fraction: float, test_fraction: float) -> None:
    """Give every kept row its split: its pin, else by rank within its label group."""
    db = store.db
    db.execute("UPDATE rows SET split = pin WHERE status = ? AND pin IS NOT NULL", (KEPT,))
    groups = db.execute(
        "SELECT strata, COUNT(*) FROM rows WHERE status = ? AND pin IS NULL GROUP BY strata",
        (KEPT,),
    ).fetchall()
    db.execute("CREATE TEMP TABLE cut (strata TEXT PRIMARY KEY, n_test INT, n_val INT)")
    db.executemany(
        "INSERT INTO cut VALUES (?, ?, ?)",
        [(s, share(n, test_fraction), share(n, val_fraction)) for s, n in groups],
    )
    db.execute(
        """
        CREATE TEMP TABLE ranked AS
        SELECT seq, strata, ROW_NUMBER() OVER (PARTITION BY strata ORDER BY rank) AS n
        FROM rows WHERE status = ? AND pin IS NULL""",
        (KEPT,),
    )
    db.execute("""
        UPDATE rows SET split = CASE WHEN r.n <= c.n_test THEN 'test'
                                     WHEN r.n <= c.n_test + c.n_val THEN 'val'
                                     ELSE 'train' END
        FROM ranked AS r JOIN cut AS c ON c.strata = r.strata
        WHERE rows.seq = r.seq""")
    db.execute("DROP TABLE ranked")
    db.execute("DROP TABLE cut")
    check_disjoint(store)


def check_disjoint(store: RowStore) -> None:
    """Fail if any input (up to case/whitespace) appears in two splits."""
    clash = store.db.execute(
        "SELECT MAX(place) FROM rows WHERE status = ? GROUP BY near "
        "HAVING COUNT(DISTINCT split) > 1 LIMIT 1",
        (KEPT,),
    ).fetchone()
    if clash:
        raise ValueError(f"{clash[0]}: its inputs are in two splits")


def largest_group(store: RowStore) -> int:
    """Kept, unpinned rows of the largest label group (what the fractions are taken of)."""
    found = store.db.execute(
        "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM rows WHERE status = ? AND pin IS NULL "
        "GROUP BY strata)",
        (KEPT,),
    ).fetchone()
    return found[0] or 0


def split_store(store: RowStore, val_fraction: float, test_fraction: float) -> None:
    """Dedupe, settle ids and split, in that order."""
    dedupe(store)
    unique_ids(store)
    assign_splits(store, val_fraction, test_fraction)


def empty_split_advice(empty: list[str], largest: int, fractions: dict[str, float]) -> str:
    """What would fill the empty splits, given the largest label's unpinned rows and the
    current {"val": ..., "test": ...} fractions. Each label's share is rounded, so a
    fraction gives a label a row only when fraction x its rows passes one half, and train
    keeps what val and test leave."""
    pin = "pin rows (prep.pin_files, prep.split_column)"
    knobs = [name for name in empty if name != "train"]
    if not knobs:
        return f"lower prep.val_fraction / prep.test_fraction, or {pin}"
    if largest == 0:
        return f"every row is pinned: {pin} to each split"
    need = math.floor(50 / largest) / 100 + 0.01  # the smallest fraction, in steps of 0.01
    raised = fractions | dict.fromkeys(knobs, need)
    left = largest - sum(share(largest, f) for f in raised.values())
    if need >= 0.5 or left < 1:
        return (
            f"no fraction can: the largest label has {largest} unpinned row(s), each "
            f"label's share is rounded and train needs one too; {pin}, or declare fewer, "
            "larger labels"
        )
    usual = " (0.1 is usual)" if need < 0.1 else ""
    names = " and ".join(f"prep.{name}_fraction" for name in knobs)
    return (
        f"raise {names} to at least {need:.2f}{usual}: each label's share of its unpinned "
        f"rows is rounded, and the largest label has {largest}; or {pin}"
    )
