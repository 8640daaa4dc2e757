"""Turn the raw data files into clean, redacted, deduplicated train/val/test splits.

Run: python -m llmops.stages.prep --params params.yaml --raw data/raw --out data/prepared \
        --quarantine data/quarantine --report reports/prep --metrics metrics/prep.json

Reads every data file under --raw (JSON Lines, CSV, Parquet; gzip, UTF-16 with a BOM;
never writes there; llmops.sources lists what it does not read and why), validates
each row against the task declared in params.yaml (llmops.records), normalises text,
redacts PII (llmops.redact), drops exact and near duplicates and splits by the
first label output field (llmops.split); a later row that reuses a kept row's id is
rejected. Every row that is not used goes to the quarantine with its file, row and reason:
rows in = rows kept + rows quarantined. Paths that are not read are listed in the data
report and the log. Fails when the rejected share exceeds prep.max_rejected_fraction,
nothing is usable or a split would be empty: then the quarantine, report and metrics are
written so the cause can be read, and no splits. Every output is written whole or not at
all (llmops.atomic).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmops import atomic
from llmops.data_report import summarize, write_report
from llmops.params import ParamsError, PrepParams, load_params
from llmops.records import Record, Rejection, parse_row, read_rows
from llmops.redact import redact, redact_raw
from llmops.sources import display, raw_files
from llmops.split import assign_splits, dedupe, input_text, unique_ids
from llmops.task import Task

log = logging.getLogger(__name__)


class PrepError(RuntimeError):
    """The raw data cannot make a usable dataset; the message says why and where."""


@dataclass(frozen=True)
class PrepResult:
    """What prep made of the raw folder."""

    rows_in: int
    splits: dict[str, list[Record]]
    rejected: list[Rejection]
    redactions: Counter[str]
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it was not read
    notes: dict[str, str] = field(default_factory=dict)  # file -> what was decoded (gzip ...)

    @property
    def rows_kept(self) -> int:
        return sum(len(rows) for rows in self.splits.values())


def file_pin(path: Path, raw: Path, params: PrepParams) -> str | None:
    """The split a whole file is pinned to by prep.pin_files, if any."""
    rel = path.relative_to(raw).as_posix()
    for split, patterns in params.pin_files.items():
        if any(fnmatch.fnmatchcase(rel, p) for p in patterns):
            return split
    return None


def prep(task: Task, params: PrepParams, raw: Path) -> PrepResult:
    """Validate, clean, redact, dedupe and split every row under `raw`."""
    files = raw_files(raw)
    records: list[Record] = []
    rejected: list[Rejection] = []
    found: dict[str, Counter[str]] = {}  # PII found per row, summed over the rows kept
    rows_in = 0
    for path, encoding in files.read.items():
        pin = file_pin(path, raw, params)
        for where, obj, text in read_rows(path, display(path.as_posix()), encoding):
            rows_in += 1
            item = (
                obj
                if isinstance(obj, Rejection)
                else parse_row(where, obj, text, task, params, pin)
            )
            if isinstance(item, Rejection):
                rejected.append(item)
                continue
            record, found[where] = _redacted(item, task, params)
            records.append(record)
    if rows_in == 0:
        names = ", ".join(display(p.name) for p in files.read) or "no data files"
        raise PrepError(
            f"{display(raw)}: no rows to prepare ({names}); expected JSON Lines, CSV or "
            "Parquet files"
        )
    kept, duplicates = dedupe(records, task)
    kept, reused = unique_ids(kept)
    splits = assign_splits(kept, task, params.val_fraction, params.test_fraction, params.seed)
    redactions = sum((found[r.where] for r in kept), Counter())
    # Rejected rows are stored and shown too, so they are redacted like the kept ones.
    quarantined = [
        replace(r, detail=redact(r.detail, params.redact)[0], raw=redact_raw(r.raw, params.redact))
        for r in sorted(rejected + duplicates + reused, key=_position)
    ]
    return PrepResult(rows_in, splits, quarantined, redactions, files.skipped, files.notes)


def _redacted(record: Record, task: Task, params: PrepParams) -> tuple[Record, Counter[str]]:
    """The record with PII redacted in its id and text fields, and what was found."""
    counts: Counter[str] = Counter()
    fields = dict(record.fields)
    for f in task.fields:
        if not f.is_label:
            fields[f.name], found = redact(fields[f.name], params.redact)
            counts += found
    # An export may use e-mails (or numbers that look like phones) as ids. Such an id, like a
    # missing one, is replaced by a stable id derived from the (redacted) inputs: no hash of
    # the PII itself, which could be reversed by trying candidates.
    identifier, found = redact(record.id, params.redact)
    record = replace(record, fields=fields)
    if not identifier or identifier != record.id:
        digest = hashlib.sha256(input_text(record, task).encode()).hexdigest()
        identifier = f"h{digest[:12]}"
    return replace(record, id=identifier), counts + found


def _position(r: Rejection) -> tuple[str, int]:
    source, line = r.where.rsplit(":", 1)
    return source, int(line)


def check(result: PrepResult, params: PrepParams, quarantine: Path) -> None:
    """Raise PrepError when the result is not fit to train on."""
    reasons = Counter(r.reason for r in result.rejected).most_common()
    top = ", ".join(f"{reason}={n}" for reason, n in reasons[:5])
    broken = [r for r in result.rejected if r.reason == "unreadable"]
    if broken:
        names = "; ".join(f"{r.where} ({r.detail})" for r in broken[:3])
        raise PrepError(
            f"{len(broken)} file(s) cannot be read to the end, so the rows after the damage "
            f"are lost: {names}; repair or remove them (see {quarantine})"
        )
    if result.rows_kept == 0:
        raise PrepError(
            f"no usable rows: all {result.rows_in} rows were rejected ({top}); see {quarantine}"
        )
    share = len(result.rejected) / result.rows_in
    if share > params.max_rejected_fraction:
        raise PrepError(
            f"{len(result.rejected)} of {result.rows_in} rows rejected ({share:.1%}), more than "
            f"prep.max_rejected_fraction={params.max_rejected_fraction:.1%} ({top}); "
            f"see {quarantine}"
        )
    empty = [name for name, rows in result.splits.items() if not rows]
    if empty:
        raise PrepError(
            f"the {' and '.join(empty)} split(s) would be empty ({result.rows_kept} rows kept): "
            "raise prep.val_fraction / prep.test_fraction, or pin rows (prep.pin_files, "
            "prep.split_column); every split is needed to train and evaluate"
        )


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def quarantine_rows(rejected: list[Rejection]) -> Iterable[dict]:
    """Quarantine records: where the row came from, why it was rejected, what it said."""
    for r in rejected:
        source, line = _position(r)
        yield {"source": source, "line": line, "reason": r.reason, "detail": r.detail, "raw": r.raw}


def write_splits(result: PrepResult, folder: Path) -> None:
    """The train/val/test splits as JSON Lines files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in result.splits.items():
        write_jsonl(folder / f"{name}.jsonl", (r.row() for r in rows))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="folder of raw data files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the splits")
    parser.add_argument("--quarantine", type=Path, required=True, help="folder for rejects")
    parser.add_argument("--report", type=Path, required=True, help="folder for the report")
    parser.add_argument("--metrics", type=Path, required=True, help="DVC metrics JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)
        task = Task.from_params(params.task)
        result = prep(task, params.prep, args.raw)
    except (ParamsError, PrepError, OSError) as err:
        raise SystemExit(f"prep: {err}") from None
    quarantine = args.quarantine / "rejected.jsonl"
    try:
        check(result, params.prep, quarantine)
        failure = None
    except PrepError as err:
        failure = err
    metrics = summarize(result, task)
    # All outputs are renamed into place together once written. A run that fails its check
    # still writes the quarantine, data report and metrics (to read the cause) and removes
    # the splits, stale ones included.
    with atomic.Outputs() as out:
        write_jsonl(out.folder(args.quarantine) / quarantine.name, quarantine_rows(result.rejected))
        write_report(result, task, metrics, out.folder(args.report), params.prep.report_examples)
        out.file(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if failure is None:
            write_splits(result, out.folder(args.out))
        else:
            out.remove(args.out)
    for path, note in result.notes.items():
        log.info("read %s: %s", path, note)
    for path, why in result.skipped.items():
        log.warning("not read: %s (%s)", path, why)
    log.info("quarantined %d rows -> %s", len(result.rejected), display(quarantine))
    if failure is not None:
        raise SystemExit(f"prep: {failure}")
    sizes = ", ".join(f"{name} {len(rows)}" for name, rows in result.splits.items())
    log.info("read %d rows from %s: kept %d (%s)", result.rows_in, display(args.raw),
             result.rows_kept, sizes)  # fmt: skip


if __name__ == "__main__":
    main()
