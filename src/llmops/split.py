"""Deduplication and the deterministic, stratified train/val/test split.

Dedup runs on cleaned, redacted messages. It keeps the first occurrence (files in name
order, then line order) and rejects later copies: `duplicate` when the cleaned message is
the same string (so raw copies that differ only in spacing or Unicode form count here, as
do messages that differ only in the PII they carried), `near_duplicate` when it differs
only in letter case. The split is stratified by category: within each category,
unpinned rows are ordered by a seeded hash of their message and the first
`test_fraction` go to test, the next `val_fraction` to val, the rest to train. Hashing
(rather than shuffling) keeps a row in its split when other rows are added or removed, so a
data pull request moves only the rows it touches. Rows with a `split` pin go where pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from llmops.records import SPLITS, Rejection, Ticket, dedupe_key


def dedupe(tickets: Iterable[Ticket]) -> tuple[list[Ticket], list[Rejection]]:
    """Keep the first ticket per message; reject later exact and near duplicates."""
    exact: dict[str, Ticket] = {}
    near: dict[str, Ticket] = {}
    kept: list[Ticket] = []
    rejected: list[Rejection] = []
    for t in tickets:
        key = dedupe_key(t.message)
        if t.message in exact:
            reason, detail = "duplicate", f"same message as {exact[t.message].where}"
        elif key in near:
            reason = "near_duplicate"
            detail = f"same message as {near[key].where} up to case/whitespace"
        else:
            exact[t.message] = near[key] = t
            kept.append(t)
            continue
        raw = json.dumps(t.record(), ensure_ascii=False)
        rejected.append(Rejection(t.where, reason, detail, raw))
    return kept, rejected


def _rank(seed: int, ticket: Ticket) -> str:
    return hashlib.sha256(f"{seed}\0{dedupe_key(ticket.message)}".encode()).hexdigest()


def assign_splits(
    tickets: Iterable[Ticket], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Ticket]]:
    """Split into {"train", "val", "test"}; each list keeps the input order."""
    chosen: dict[str, str] = {}  # ticket.where -> split
    by_category: dict[str, list[Ticket]] = defaultdict(list)
    tickets = list(tickets)
    for t in tickets:
        if t.pin:
            chosen[t.where] = t.pin
        else:
            by_category[t.category].append(t)
    for group in by_category.values():
        ordered = sorted(group, key=lambda t: _rank(seed, t))
        n_test = round(len(ordered) * test_fraction)
        n_val = round(len(ordered) * val_fraction)
        for i, t in enumerate(ordered):
            chosen[t.where] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    splits: dict[str, list[Ticket]] = {name: [] for name in SPLITS}
    for t in tickets:
        splits[chosen[t.where]].append(t)
    check_disjoint(splits)
    return splits


def check_disjoint(splits: dict[str, list[Ticket]]) -> None:
    """Fail if any message (up to case/whitespace) appears in two splits."""
    seen: dict[str, str] = {}
    for name, rows in splits.items():
        for t in rows:
            other = seen.setdefault(dedupe_key(t.message), name)
            if other != name:
                raise ValueError(f"{t.where}: message is in both {other} and {name} splits")
