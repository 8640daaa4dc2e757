"""Turn the raw data files into clean, redacted, deduplicated train/val/test splits.

Run: python -m llmops.stages.prep --params params.yaml --raw data/raw --out data/prepared \
        --quarantine data/quarantine --report reports/prep --metrics metrics/prep.json

Reads every data file under --raw (JSON Lines, CSV, Parquet; gzip, UTF-16 with a BOM;
never writes there; llmops.data.sources lists what it does not read and why), validates
each row against the task declared in params.yaml (llmops.data.records), normalises text,
redacts PII (llmops.data.redact), drops exact and near duplicates and splits by the
first label output field (llmops.data.split); a later row that reuses a kept row's id is
rejected. Every row that is not used goes to the quarantine with its file, row and reason:
rows in = rows kept + rows quarantined. Paths that are not read are listed in the data
report and the log. Fails when the rejected share exceeds prep.max_rejected_fraction,
nothing is usable or a split would be empty: then the quarantine, report and metrics are
written so the cause can be read, and no splits. Every output is written whole or not at
all (llmops.config.atomic).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from llmops.config import atomic
from llmops.config.params import SPLITS, ParamsError, PrepParams, load_params
from llmops.config.task import Task
from llmops.data.readers import read_rows
from llmops.data.records import Record, Rejection, parse_row
from llmops.data.redact import pii_in_name, redact, redact_raw
from llmops.data.rowstore import PrepResult, RowStats, RowStore
from llmops.data.sources import Encoding, Limits, RawFiles, display, raw_files
from llmops.data.split import empty_split_advice, keys, largest_group, split_store
from llmops.report.data_report import profile, summarize, write_report

log = logging.getLogger(__name__)
QUARANTINE = "rejected.jsonl"  # in the --quarantine folder


class PrepError(RuntimeError):
    """The raw data cannot make a usable dataset; the message says why and where."""


def file_pin(path: Path, raw: Path, params: PrepParams) -> str | None:
    """The split a whole file is pinned to by prep.pin_files, if any."""
    rel = path.relative_to(raw).as_posix()
    for split, patterns in params.pin_files.items():
        if any(fnmatch.fnmatchcase(rel, p) for p in patterns):
            return split
    return None


def prep(task: Task, params: PrepParams, raw: Path, scratch: Path | None = None) -> PrepResult:
    """Validate, clean, redact, dedupe and split every row under `raw`; the rows go to a
    RowStore in a temporary folder (under `scratch` if given), so memory stays flat."""
    files = _names_without_pii(raw_files(raw), params)
    result = PrepResult(RowStore.temporary(scratch), files.skipped, files.notes)
    try:
        _read(result.store, files, task, params, raw)
        if result.rows_in == 0:
            names = ", ".join(display(p.name) for p in files.read) or "no data files"
            raise PrepError(
                f"{display(raw)}: no rows to prepare ({names}); expected JSON Lines, CSV or "
                "Parquet files"
            )
        split_store(result.store, params.val_fraction, params.test_fraction, bool(task.texts))
    except BaseException:
        result.close()
        raise
    return result


def _read(store: RowStore, files: RawFiles, task: Task, params: PrepParams, raw: Path) -> None:
    bounds = Limits.of(params)
    for path, encoding in files.read.items():
        pin = file_pin(path, raw, params)
        for where, obj, text in read_rows(path, display(path.as_posix()), encoding, bounds):
            item = (
                obj
                if isinstance(obj, Rejection)
                else parse_row(where, obj, text, task, params, pin)
            )
            if isinstance(item, Rejection):
                # Rejected rows are stored and shown too, so they are redacted as well.
                detail = redact(item.detail, params.redact)[0]
                store.reject(replace(item, detail=detail, raw=redact_raw(item.raw, params.redact)))
                continue
            record, found = _redacted(item, task, params)
            store.add(record, keys(record, task, params.seed), found, _stats(record, task))
    store.flush()


def _names_without_pii(files: RawFiles, params: PrepParams) -> RawFiles:
    """The files whose names hold no PII; the others are listed as not read (a file name
    is shown in every row's `source`, the report and the log), and every name listed that
    holds PII is shown without it."""
    read: dict[Path, Encoding] = {}
    skipped: dict[str, str] = {}
    for path, encoding in files.read.items():
        shown = display(path.as_posix())
        found = pii_in_name(shown, params.redact)
        if found:
            kinds = ", ".join(sorted(found))
            skipped[_unnamed(shown, kinds, skipped)] = (
                f"the file name holds PII ({kinds}): rename it"
            )
        else:
            read[path] = encoding
    for shown, why in files.skipped.items():
        found = pii_in_name(shown, params.redact)
        key = _unnamed(shown, ", ".join(sorted(found)), skipped) if found else shown
        skipped[key] = why
    return RawFiles(read, skipped)


def _unnamed(shown: str, kinds: str, taken: dict[str, str]) -> str:
    """`shown` with its last part replaced by what it holds; numbered when taken."""
    folder = shown.rsplit("/", 1)[0] + "/" if "/" in shown else ""
    key = base = f"{folder}<a name holding {kinds}>"
    n = 1
    while key in taken:
        n += 1
        key = f"{base} ({n})"
    return key


def _stats(record: Record, task: Task) -> RowStats:
    labels = tuple(record.fields[f.name] for f in task.fields if f.is_label)
    lengths = tuple(len(record.fields[f.name]) for f in task.fields if not f.is_label)
    return RowStats(labels, lengths)


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
        digest = hashlib.sha256(task.input_text(record.fields).encode()).hexdigest()
        identifier = f"h{digest[:12]}"
    return replace(record, id=identifier), counts + found


def check(result: PrepResult, params: PrepParams, quarantine: Path) -> None:
    """Raise PrepError when the result is not fit to train on."""
    outcomes = result.outcomes
    reasons = [(r, n) for r, n in outcomes.most_common() if r != "kept"]
    top = ", ".join(f"{reason}={n}" for reason, n in reasons[:5])
    if outcomes["unreadable"]:
        broken = list(result.rejected("unreadable", 3))
        names = "; ".join(f"{r.where} ({r.detail})" for r in broken)
        raise PrepError(
            f"{outcomes['unreadable']} file(s) cannot be read to the end, so the rows after "
            f"that point are lost: {names}; repair or remove them (see {quarantine})"
        )
    if result.rows_kept == 0:
        raise PrepError(
            f"no usable rows: all {result.rows_in} rows were rejected ({top}); see {quarantine}"
        )
    share = result.rows_rejected / result.rows_in
    if share > params.max_rejected_fraction:
        raise PrepError(
            f"{result.rows_rejected} of {result.rows_in} rows rejected ({share:.1%}), more "
            f"than prep.max_rejected_fraction={params.max_rejected_fraction:.1%} ({top}); "
            f"see {quarantine}"
        )
    empty = [name for name, n in result.sizes.items() if n == 0]
    if empty:
        fractions = {"val": params.val_fraction, "test": params.test_fraction}
        advice = empty_split_advice(empty, largest_group(result.store), fractions)
        raise PrepError(
            f"the {' and '.join(empty)} split(s) would be empty ({result.rows_kept} rows "
            f"kept): {advice}; every split is needed to train and evaluate"
        )


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def quarantine_rows(rejected: Iterable[Rejection]) -> Iterable[dict]:
    """Quarantine records: where the row came from, why it was rejected, what it said."""
    for r in rejected:
        source, line = r.where.rsplit(":", 1)
        yield {
            "source": source,
            "line": int(line),
            "reason": r.reason,
            "detail": r.detail,
            "raw": r.raw,
        }


def write_splits(splits: Mapping[str, Iterable[Record]], folder: Path) -> None:
    """The train/val/test splits as JSON Lines files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
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
    with result:
        failure = _write(result, task, params.prep, args)
        rejected, sizes = result.rows_rejected, result.sizes
    for path, note in result.notes.items():
        log.info("read %s: %s", path, note)
    for path, why in result.skipped.items():
        log.warning("not read: %s (%s)", path, why)
    log.info("quarantined %d rows -> %s", rejected, display(args.quarantine / QUARANTINE))
    if failure is not None:
        raise SystemExit(f"prep: {failure}")
    shown = ", ".join(f"{name} {n}" for name, n in sizes.items())
    log.info(
        "read %d rows from %s: kept %d (%s)",
        result.rows_in,
        display(args.raw),
        sum(sizes.values()),
        shown,
    )


def _write(
    result: PrepResult, task: Task, params: PrepParams, args: argparse.Namespace
) -> PrepError | None:
    """Write every output; the check's failure, if any (then no splits are written)."""
    try:
        check(result, params, args.quarantine / QUARANTINE)
        failure = None
    except PrepError as err:
        failure = err
    counted = profile(result, task)
    metrics = summarize(result, task, counted)
    # All outputs are renamed into place together once written. A run that fails its check
    # still writes the quarantine, data report and metrics (to read the cause) and removes
    # the splits, stale ones included.
    with atomic.Outputs() as out:
        write_jsonl(out.folder(args.quarantine) / QUARANTINE, quarantine_rows(result.rejected()))
        report = out.folder(args.report)
        write_report(result, task, metrics, report, params.report_examples, counted)
        out.file(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if failure is None:
            write_splits({name: result.records(name) for name in SPLITS}, out.folder(args.out))
        else:
            out.remove(args.out)
    return failure


if __name__ == "__main__":
    main()
