"""Deduplication and the deterministic, stratified, group-aware train/val/test split, over
a RowStore.

Dedup runs on the cleaned, redacted fields. Rows that share their inputs (up to case and
whitespace) are one input's rows; the first of them leads (a pinned row beats an unpinned
one: test, then val, then train, whatever the file order, so a pinned test set stays
whole; among equals the first in files in name order, then row order). Another row of the
input is kept only as a further reference: when the task has text output fields, its
label outputs equal the leader's, it is pinned to no other split than the leader's, and
its text outputs (up to case and whitespace) differ from every earlier row's. Otherwise
it is rejected: `duplicate` when its cleaned inputs are the leader's strings (so raw
copies that differ only in spacing or Unicode form count here, as do inputs that differ
only in the PII they carried), `near_duplicate` when they differ in letter case or
spacing; the detail names the row it repeats, and says so when its labels differ (a
conflicting label) or it is pinned elsewhere. A task without text outputs thus keeps
one row per input. The n-th reference of an input that carries the leader's id (the
generated id hashes the inputs) becomes `<id>.<n>`. Of the rows left, rows that share an
id are settled the same way: one is kept, the others are rejected as `duplicate_id`
(reports match examples by id).

The split is by input, so that no input is in two splits (`check_disjoint`): the rows of
an input follow its leader's pin, and unpinned inputs are stratified by the first label
output field (one group when there is none): within each label, inputs are ordered by a
seeded hash of their inputs and the first `test_fraction` of them go to test, the next
`val_fraction` to val, the rest to train, with all their rows. Hashing (rather than
shuffling) keeps an input in its split when other rows are added or removed, so a data
pull request moves only the rows it touches.

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
    answer: bytes  # the label output fields' values
    said: bytes  # the text output fields up to case and whitespace
    rank: str  # seeded hash ordering a label's unpinned inputs
    strata: str  # the first label output field's value ('' when there is none)
    pin_order: int


def share(rows: int, fraction: float) -> int:
    """The rows of a label group a split gets: its fraction of them, rounded (so a group of
    fewer than 1 / (2 x fraction) rows gives none)."""
    return round(rows * fraction)


def keys(record: Record, task: Task, seed: int) -> Keys:
    """The row's Keys for a split seeded with `seed`."""
    text, near = task.input_text(record.fields), task.input_key(record.fields)
    rank = hashlib.sha256(f"{seed}\0{near}".encode()).hexdigest()
    strata = record.fields[task.labels[0].name] if task.labels else ""
    answer = "\0".join(record.fields[f.name] for f in task.labels)
    said = "\0".join(dedupe_key(record.fields[f.name]) for f in task.texts)
    digests = (_digest(text), _digest(near), _digest(answer), _digest(said))
    return Keys(*digests, rank, strata, PIN_ORDER[record.pin])


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def dedupe(store: RowStore, references: bool = False) -> None:
    """Keep each input's leader and, when `references` (the task has text outputs), its
    further references; mark the other rows (see the module docstring)."""
    store.flush()
    db = store.db
    db.execute("CREATE INDEX rows_near ON rows (near, pin_order, seq)")
    db.execute("""
        CREATE TEMP TABLE leads AS
        SELECT near, seq AS lead, pin_order AS lead_pin FROM (
            SELECT near, seq, pin_order,
                   ROW_NUMBER() OVER (PARTITION BY near ORDER BY pin_order, seq) AS n
            FROM rows)
        WHERE n = 1""")
    db.execute("CREATE UNIQUE INDEX temp.leads_near ON leads (near)")
    # A row repeats an earlier one when both could be kept (the same pin or none) and say
    # the same: rows refused for their pin do not count.
    db.execute("""
        CREATE TEMP TABLE ranked AS
        SELECT rows.seq, l.lead,
               ROW_NUMBER() OVER saying AS n_said,
               FIRST_VALUE(rows.place) OVER saying AS first_said
        FROM rows JOIN leads AS l ON l.near = rows.near
        WINDOW saying AS (PARTITION BY rows.near, rows.answer, rows.said,
                                       rows.pin_order IN (l.lead_pin, 3)
                          ORDER BY rows.pin_order, rows.seq)""")
    db.execute("CREATE UNIQUE INDEX temp.ranked_seq ON ranked (seq)")
    kept = """rows.seq = r.lead OR (:references AND rows.answer = f.answer
              AND rows.pin_order IN (f.pin_order, 3) AND r.n_said = 1)"""
    db.execute(
        f"""
        UPDATE rows SET
            status = CASE WHEN {kept} THEN :kept
                          WHEN rows.exact = f.exact THEN 'duplicate'
                          ELSE 'near_duplicate' END,
            detail = CASE WHEN {kept} THEN NULL
                          WHEN rows.answer != f.answer
                               THEN 'same inputs as ' || f.place || ' with other labels'
                          WHEN rows.pin_order NOT IN (f.pin_order, 3)
                               THEN 'same inputs as ' || f.place || ', pinned to ' || f.pin
                          WHEN :references THEN 'same inputs and outputs as ' || r.first_said
                          ELSE 'same inputs as ' || f.place END
                      || CASE WHEN {kept} OR rows.exact = f.exact THEN ''
                              ELSE ' up to case/whitespace' END
        FROM ranked AS r JOIN rows AS f ON f.seq = r.lead
        WHERE rows.seq = r.seq""",
        {"kept": KEPT, "references": references},
    )
    db.execute("DROP TABLE ranked")
    db.execute("DROP TABLE leads")


def unique_ids(store: RowStore) -> None:
    """Number the further references that carry their input's id (a generated id is the
    inputs' hash; a dataset may give every reference of an input its id): the n-th gets
    `<id>.<n>`. Then, of the kept rows, keep one of each id (rows whose id is their own
    before numbered ones, then pinned rows first, like dedupe); mark the others
    `duplicate_id`: reports and gates match examples by id, so two may not share one."""
    db = store.db
    db.execute(
        """
        CREATE TEMP TABLE numbered AS
        SELECT seq, n FROM (
            SELECT seq, id, ROW_NUMBER() OVER input AS n, FIRST_VALUE(id) OVER input AS lead_id
            FROM rows WHERE status = ?
            WINDOW input AS (PARTITION BY near ORDER BY pin_order, seq))
        WHERE n > 1 AND id = lead_id""",
        (KEPT,),
    )
    db.execute("CREATE UNIQUE INDEX temp.numbered_seq ON numbered (seq)")
    db.execute(
        "UPDATE rows SET id = rows.id || '.' || r.n FROM numbered AS r WHERE rows.seq = r.seq"
    )
    db.execute(
        """
        CREATE TEMP TABLE id_taken AS
        SELECT seq, first_place FROM (
            SELECT seq,
                   ROW_NUMBER() OVER taken AS n, FIRST_VALUE(place) OVER taken AS first_place
            FROM rows WHERE status = ?
            WINDOW taken AS (PARTITION BY id ORDER BY seq IN (SELECT seq FROM numbered),
                                                      pin_order, seq))
        WHERE n > 1""",
        (KEPT,),
    )
    db.execute("""
        UPDATE rows SET status = 'duplicate_id',
            detail = 'id ' || py_repr(rows.id) || ' is already used by ' || t.first_place
        FROM id_taken AS t WHERE rows.seq = t.seq""")
    db.execute("DROP TABLE id_taken")
    db.execute("DROP TABLE numbered")


def assign_splits(store: RowStore, val_fraction: float, test_fraction: float) -> None:
    """Give every kept row its split: its input's pin, else by its input's rank among its
    label group's inputs."""
    db = store.db
    db.execute(
        """
        UPDATE rows SET split = f.pin
        FROM (SELECT near, MIN(pin_order) AS pin_order FROM rows WHERE status = :kept
              GROUP BY near HAVING MIN(pin_order) < 3) AS g
        JOIN rows AS f ON f.near = g.near AND f.pin_order = g.pin_order AND f.status = :kept
        WHERE rows.status = :kept AND rows.near = g.near""",
        {"kept": KEPT},
    )
    groups = db.execute(
        "SELECT strata, COUNT(DISTINCT near) FROM rows WHERE status = ? AND split IS NULL "
        "GROUP BY strata",
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
        SELECT seq, strata, DENSE_RANK() OVER (PARTITION BY strata ORDER BY rank, near) AS n
        FROM rows WHERE status = ? AND split IS NULL""",
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
    """Unpinned inputs of the largest label group (what the fractions are taken of)."""
    found = store.db.execute(
        "SELECT MAX(n) FROM (SELECT COUNT(DISTINCT near) AS n FROM rows WHERE status = ? "
        "AND near NOT IN (SELECT near FROM rows WHERE status = ? AND pin IS NOT NULL) "
        "GROUP BY strata)",
        (KEPT, KEPT),
    ).fetchone()
    return found[0] or 0


def split_store(
    store: RowStore, val_fraction: float, test_fraction: float, references: bool = False
) -> None:
    """Dedupe (keeping further references when `references`), settle ids and split."""
    dedupe(store, references)
    unique_ids(store)
    assign_splits(store, val_fraction, test_fraction)


def empty_split_advice(empty: list[str], largest: int, fractions: dict[str, float]) -> str:
    """What would fill the empty splits, given the largest label's unpinned inputs and the
    current {"val": ..., "test": ...} fractions. Each label's share is rounded, so a
    fraction gives a label an input only when fraction x its inputs passes one half, and
    train keeps what val and test leave."""
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
            f"no fraction can: the largest label has {largest} unpinned input(s), each "
            f"label's share is rounded and train needs one too; {pin}, or declare fewer, "
            "larger labels"
        )
    usual = " (0.1 is usual)" if need < 0.1 else ""
    names = " and ".join(f"prep.{name}_fraction" for name in knobs)
    return (
        f"raise {names} to at least {need:.2f}{usual}: each label's share of its unpinned "
        f"inputs is rounded, and the largest label has {largest}; or {pin}"
    )
