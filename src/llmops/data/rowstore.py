"""The rows of one prep run, kept on disk so that memory stays flat whatever their number.

    with RowStore.temporary() as store:
        store.add(record, keys, found, stats)      # a cleaned row, in reading order
        store.reject(rejection)                    # a row that was not usable
        ...                                        # llmops.data.split: dedupe, ids, split (SQL)
        for record in store.records("train"): ...  # streamed back in reading order

A SQLite file in a temporary folder holds every row with its reading position (`seq`), the
hashes that dedupe and the split compare (`llmops.data.split.Keys`), its label values and text
lengths for the data report, and where it ended up: a split, or a rejection reason. Rows
that were never usable (`reject`) sit in a second table with their reason. Memory holds
one batch of rows while adding and one row while reading; sorting and grouping are
SQLite's, which spills to disk. Standard library only.
"""

from __future__ import annotations

import functools
import json
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from llmops.config.params import SPLITS
from llmops.data.records import Record, Rejection

BATCH = 5000  # rows inserted per executemany
KEPT = "kept"  # rows.status of a row that is used; else the reason it was rejected

SCHEMA = """
CREATE TABLE rows (
    seq INTEGER PRIMARY KEY,  -- reading order: file by file, row by row
    place TEXT NOT NULL,      -- "file:row", as the outputs show it
    id TEXT NOT NULL,
    fields TEXT NOT NULL,     -- the row's task fields, JSON, in declared order
    pin TEXT,                 -- the split it is pinned to, if any
    pin_order INTEGER NOT NULL,  -- who wins among duplicates: test, val, train, unpinned
    exact BLOB NOT NULL,      -- hash of the cleaned inputs
    near BLOB NOT NULL,       -- hash of the inputs up to case and whitespace
    answer BLOB NOT NULL,     -- hash of the label output fields' values
    said BLOB NOT NULL,       -- hash of the text output fields up to case and whitespace
    rank TEXT NOT NULL,       -- seeded hash that orders a label's rows for the split
    strata TEXT NOT NULL,     -- the value of the first label output field ('' if none)
    labels TEXT NOT NULL,     -- JSON list: every label field's value (data report)
    lengths TEXT NOT NULL,    -- JSON list: every text field's length (data report)
    found TEXT,               -- JSON object: PII found per kind, when any
    status TEXT,              -- 'kept', or the reason it was rejected (duplicate ...)
    detail TEXT,              -- why it was rejected, naming the row it repeats
    split TEXT
);
CREATE TABLE rejected (
    seq INTEGER PRIMARY KEY,
    place TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    raw TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RowStats:
    """What the data report needs of a row: label values and text lengths, in task order."""

    labels: tuple[str, ...]
    lengths: tuple[int, ...]


class RowStore:
    """A prep run's rows and rejections in a SQLite file (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = sqlite3.connect(folder / "rows.sqlite", isolation_level=None)
        self.db.create_function("py_repr", 1, repr, deterministic=True)  # as details quote ids
        # The file is scratch: no journal or fsync; temporary sorts go to disk, not memory.
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
            "PRAGMA cache_size=-2000;" + SCHEMA
        )
        self._seq = 0
        self._rows: list[tuple] = []
        self._rejected: list[tuple] = []

    @classmethod
    def temporary(cls, parent: Path | None = None) -> RowStore:
        """A store in a new temporary folder (under `parent` if given, else the system's:
        TMPDIR), removed by close()."""
        folder = Path(tempfile.mkdtemp(prefix="llmops-rows-", dir=parent))
        try:
            return cls(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def __enter__(self) -> RowStore:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, record: Record, keys, found: Counter[str], stats: RowStats) -> None:
        """Store a cleaned row; `keys` are its llmops.data.split.Keys."""
        self._seq += 1
        self._rows.append(
            (
                self._seq,
                record.where,
                record.id,
                json.dumps(record.fields, ensure_ascii=False),
                record.pin,
                keys.pin_order,
                keys.exact,
                keys.near,
                keys.answer,
                keys.said,
                keys.rank,
                keys.strata,
                json.dumps(stats.labels, ensure_ascii=False),
                json.dumps(stats.lengths),
                json.dumps(found) if found else None,
            )
        )
        if len(self._rows) >= BATCH:
            self.flush()

    def reject(self, rejection: Rejection) -> None:
        """Store a row that was not usable, as it will be quarantined (already redacted)."""
        self._seq += 1
        r = rejection
        self._rejected.append((self._seq, r.where, r.reason, r.detail, r.raw))
        if len(self._rejected) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the rows added so far (before anything reads the tables)."""
        if self._rows:
            values = ", ".join(["?"] * 15 + ["NULL"] * 3)  # status, detail, split come later
            self.db.executemany(f"INSERT INTO rows VALUES ({values})", self._rows)
        if self._rejected:
            self.db.executemany("INSERT INTO rejected VALUES (?, ?, ?, ?, ?)", self._rejected)
        self._rows, self._rejected = [], []

    @property
    def rows_in(self) -> int:
        """Rows read: added and rejected."""
        return self._seq

    def counts(self) -> Counter[str]:
        """Rows per outcome: `kept` and each rejection reason."""
        self.flush()
        out: Counter[str] = Counter()
        for query in (
            "SELECT status, COUNT(*) FROM rows GROUP BY status",
            "SELECT reason, COUNT(*) FROM rejected GROUP BY reason",
        ):
            out.update({reason: n for reason, n in self.db.execute(query) if reason})
        return out

    def split_sizes(self, splits: tuple[str, ...], inputs: bool = False) -> dict[str, int]:
        """Kept rows per split; `inputs`: distinct inputs (an input's references count once)."""
        counted = "COUNT(DISTINCT near)" if inputs else "COUNT(*)"
        query = f"SELECT split, {counted} FROM rows WHERE status = ? GROUP BY split"
        found = dict(self.db.execute(query, (KEPT,)))
        return {name: found.get(name, 0) for name in splits}

    def records(self, split: str) -> Iterator[Record]:
        """The kept rows of one split, in reading order; an input's rows (its references)
        together, its leader (pinned rows first, as dedupe chose it) first, where the input
        was first read."""
        query = (
            "SELECT id, fields, pin, place FROM rows WHERE status = ? AND split = ? "
            "ORDER BY MIN(seq) OVER (PARTITION BY near), pin_order, seq"
        )
        for identifier, fields, pin, place in self.db.execute(query, (KEPT, split)):
            yield Record(identifier, json.loads(fields), pin, place)

    def kept_stats(self) -> Iterator[tuple[str, RowStats, dict[str, int]]]:
        """(split, stats, PII found) of every kept row, in reading order."""
        query = "SELECT split, labels, lengths, found FROM rows WHERE status = ? ORDER BY seq"
        for split, labels, lengths, found in self.db.execute(query, (KEPT,)):
            stats = RowStats(tuple(json.loads(labels)), tuple(json.loads(lengths)))
            yield split, stats, json.loads(found) if found else {}

    def rejections(
        self, reason: str | None = None, limit: int = -1, per_reason: int | None = None
    ) -> Iterator[Rejection]:
        """Every row not used, in reading order: the ones rejected as read, and the ones
        dedupe and the id check turned away (their raw text is the row as it would have been
        written). Or only one `reason`, at most `limit` rows, at most `per_reason` of each."""
        self.flush()
        union = f"""
            SELECT seq, place, reason, detail, raw, NULL AS id, NULL AS fields FROM rejected
            UNION ALL
            SELECT seq, place, status, detail, NULL, id, fields FROM rows
            WHERE status != '{KEPT}'"""
        if per_reason is not None:  # the first rows of each reason
            union = f"""
                SELECT seq, place, reason, detail, raw, id, fields FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY reason ORDER BY seq) AS n
                    FROM ({union}))
                WHERE n <= {int(per_reason)}"""
        where = "WHERE reason = ?" if reason else ""
        query = f"SELECT * FROM ({union}) {where} ORDER BY seq LIMIT ?"
        args = (reason, limit) if reason else (limit,)
        for _, place, why, detail, raw, identifier, fields in self.db.execute(query, args):
            if raw is None:  # a row dedupe or the id check turned away
                row = {"id": identifier, **json.loads(fields), "source": place}
                raw = json.dumps(row, ensure_ascii=False)
            yield Rejection(place, why, detail, raw)


@dataclass
class PrepResult:
    """What prep made of the raw folder: the rows, split or rejected, in `store` (on disk
    until `close`, which the `with` block calls)."""

    store: RowStore
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it was not read
    notes: dict[str, str] = field(default_factory=dict)  # file -> what was decoded (gzip ...)

    def __enter__(self) -> PrepResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @property
    def rows_in(self) -> int:
        return self.store.rows_in

    @functools.cached_property
    def outcomes(self) -> Counter[str]:
        """Rows per outcome: `kept` and every rejection reason (the store is final once
        prep returns)."""
        return self.store.counts()

    @property
    def rows_kept(self) -> int:
        return self.outcomes["kept"]

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_kept

    @functools.cached_property
    def sizes(self) -> dict[str, int]:
        return self.store.split_sizes(SPLITS)

    @functools.cached_property
    def inputs(self) -> dict[str, int]:
        """Distinct inputs per split (fewer than rows where inputs have several references)."""
        return self.store.split_sizes(SPLITS, inputs=True)

    def records(self, split: str) -> Iterable[Record]:
        """The kept rows of a split, in reading order."""
        return self.store.records(split)

    def rejected(
        self, reason: str | None = None, limit: int = -1, per_reason: int | None = None
    ) -> Iterable[Rejection]:
        """The quarantined rows in reading order (redacted): all, or those of one reason,
        or at most `per_reason` of each."""
        return self.store.rejections(reason, limit, per_reason)
