"""Generate the worked example's raw data: three monthly support-ticket exports (JSONL).

Run: python -m examples.ticket_triage.generate --out data/raw [--seed 1234] [--rows 3600]
     [--params params.yaml]

Deterministic: the same arguments give byte-identical files. Besides `rows` clean tickets
(the held-out phrasings among them pinned with "split": "test") the files hold planted
defects, one per dirty line, that the `prep` stage must quarantine; `generate` returns how
many of each it planted, so tests can check prep against the truth.
"""

from __future__ import annotations

import argparse
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

from examples.ticket_triage import dirty
from examples.ticket_triage.dirty import REASONS, Line
from examples.ticket_triage.perturb import PII_KINDS
from examples.ticket_triage.phrases import PRIORITY_WEIGHTS
from examples.ticket_triage.templates import CATEGORIES
from examples.ticket_triage.tickets import CLEAN_MAX_CHARS, PENDING_ID, Ticket, compose
from llmops.config.params import load_params

FILE_NAMES: tuple[str, ...] = (
    "export-2026-09.jsonl",
    "export-2026-10.jsonl",
    "export-2026-11.jsonl",
)
TEST_FRACTION = 0.17  # share of clean rows built from held-out templates
PII_RATE = 0.10  # share of clean rows whose message carries PII
DIRTY_PII_RATE = 0.3  # share of dirty rows (duplicates aside) whose message carries PII
ROWS_PER_DIRTY = 240  # about one dirty row of each reason per this many clean rows
MIN_ROWS = 20


@dataclass(frozen=True)
class Planted:
    """What `generate` wrote, counted as it planted it."""

    clean_rows: int  # rows that are valid and unique; prep should keep all of them
    test_rows: int  # of clean_rows, how many carry "split": "test"
    dirty: dict[str, int]  # reason code -> planted rows with that defect (every code present)
    redactions: dict[str, int]  # "EMAIL"/"PHONE"/"CARD" -> PII occurrences in clean messages
    files: tuple[str, ...]  # file names written


def _unique_ticket(rng: random.Random, used: set[str], held_out: bool, pii_rate: float) -> Ticket:
    """A ticket whose dedupe key no earlier ticket has; its key is added to `used`."""
    category = rng.choice(CATEGORIES)
    priority = rng.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()))[0]
    for _ in range(1000):
        ticket = compose(rng, category, priority, held_out, pii_rate)
        if ticket is not None and ticket.key not in used:
            used.add(ticket.key)
            return ticket
    raise RuntimeError(f"cannot draw a new unique {category}/{priority} ticket; too many rows?")


def clean_tickets(rng: random.Random, rows: int, used: set[str]) -> list[Ticket]:
    """`rows` unique clean tickets in export order, about TEST_FRACTION of them held out."""
    held_out = [True] * round(rows * TEST_FRACTION) + [False] * (rows - round(rows * TEST_FRACTION))
    rng.shuffle(held_out)
    return [_unique_ticket(rng, used, h, PII_RATE) for h in held_out]


def dirty_counts(rng: random.Random, rows: int) -> dict[str, int]:
    """How many rows of each reason to plant: about rows / ROWS_PER_DIRTY, +-25%, at least 1."""
    base = max(1, round(rows / ROWS_PER_DIRTY))
    return {reason: max(1, base + rng.randint(-base // 4, base // 4)) for reason in REASONS}


def _insert_after(
    rng: random.Random, files: list[list[Line]], original: object, line: Line
) -> None:
    """Insert `line` at a random place after the line holding row `original`, in file order."""
    f = next(i for i, lines in enumerate(files) if any(x.row is original for x in lines))
    pos = next(i for i, x in enumerate(files[f]) if x.row is original)
    target = rng.randint(f, len(files) - 1)
    start = pos + 1 if target == f else 0
    files[target].insert(rng.randint(start, len(files[target])), line)


def plant_dirty(
    rng: random.Random,
    files: list[list[Line]],
    tickets: list[Ticket],
    counts: dict[str, int],
    used: set[str],
    max_message_chars: int,
) -> None:
    """Insert the dirty lines: reason by reason, round-robin over files, random positions."""
    for r, reason in enumerate(REASONS):
        if reason in ("duplicate", "near_duplicate"):
            continue
        for j in range(counts[reason]):
            # Some carry PII, so the quarantine's redaction is exercised too.
            base = _unique_ticket(rng, used, held_out=False, pii_rate=DIRTY_PII_RATE).row
            if reason == "too_long":
                line = dirty.too_long(rng, base, max_message_chars)
            else:
                line = dirty.BUILDERS[reason](rng, base, j)
            lines = files[(r + j) % len(files)]
            lines.insert(rng.randint(0, len(lines)), line)
    # Copies of train rows without PII, so the only thing that differs is what prep dedupes on.
    candidates = [t for t in tickets if "split" not in t.row and not any(t.pii.values())]
    originals = rng.sample(candidates, counts["duplicate"] + counts["near_duplicate"])
    for i, ticket in enumerate(originals):
        if i < counts["duplicate"]:
            line = dirty.duplicate(ticket.row)
        else:
            line = dirty.near_duplicate(rng, ticket.row)
        _insert_after(rng, files, ticket.row, line)


def write_exports(out: Path, files: list[list[Line]]) -> None:
    """Write the lines, numbering row ids in file order; bytes, so invalid UTF-8 survives."""
    out.mkdir(parents=True, exist_ok=True)
    number = 0
    for name, lines in zip(FILE_NAMES, files, strict=True):
        with (out / name).open("wb") as fh:
            for line in lines:
                row = line.row
                if isinstance(row, dict) and row.get("id") == PENDING_ID:
                    number += 1
                    row = {**row, "id": f"T{number:06d}"}
                fh.write(line.render(row) + b"\n")


def generate(out: Path, max_message_chars: int, seed: int = 1234, rows: int = 3600) -> Planted:
    """Write the three exports to `out` and return what was planted in them.

    `max_message_chars` is the task's limit (task.yaml task.inputs.message.max_chars): the planted
    `too_long` rows exceed it.
    """
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be >= {MIN_ROWS}, got {rows}")
    if max_message_chars < 2 * CLEAN_MAX_CHARS:
        # Clean messages go up to CLEAN_MAX_CHARS; keep a clear gap to the planted long ones.
        raise ValueError(
            f"max_message_chars must be >= {2 * CLEAN_MAX_CHARS}, got {max_message_chars}"
        )
    rng = random.Random(seed)
    used: set[str] = set()
    tickets = clean_tickets(rng, rows, used)
    counts = dirty_counts(rng, rows)
    bounds = [round(rows * k / len(FILE_NAMES)) for k in range(len(FILE_NAMES) + 1)]
    files = [[Line(t.row) for t in tickets[a:b]] for a, b in itertools.pairwise(bounds)]
    plant_dirty(rng, files, tickets, counts, used, max_message_chars)
    write_exports(out, files)
    return Planted(
        clean_rows=rows,
        test_rows=sum("split" in t.row for t in tickets),
        dirty=counts,
        redactions={kind.upper(): sum(t.pii[kind] for t in tickets) for kind in PII_KINDS},
        files=FILE_NAMES,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the .jsonl exports")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    parser.add_argument("--rows", type=int, default=3600, help="clean rows (default 3600)")
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="params file whose message max_chars the planted too_long rows exceed",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        limit = load_params(args.params).task.inputs["message"].max_chars
        planted = generate(args.out, limit, args.seed, args.rows)
    except ValueError as err:  # a bad argument or params file: say so without a traceback
        raise SystemExit(f"error: {err}") from err
    print(
        f"wrote {planted.clean_rows} clean rows ({planted.test_rows} test) and "
        f"{sum(planted.dirty.values())} dirty rows to {args.out}/ in {len(planted.files)} files"
    )


if __name__ == "__main__":
    main()
