"""Corrections from the service's feedback as a new raw data batch; doubtful answers for labelling.

Run: python -m llmops.watch.harvest --params params.yaml --raw data/raw --labelling data/labelling \
        [--logs logs] [--provenance data/harvest] [--hours H | --since ISO --until ISO]

Reads the feedback lines in the window [since, until) (`llmops.watch.logs`; `--logs` is a
folder or an fsspec URI, by default LLMOPS_LOG_URI, else params.yaml serve.log_uri, else
logs/) and the request lines they name, read from `serve.logs.retain_days` before the window
(the service deletes older ones). Each corrected answer (the model's answer with the
correction applied; the latest correction of a request wins) becomes one row of
`<raw>/harvest-<since>-<until>.jsonl`, in the columns prep reads (task.yaml `prep.columns`,
the id under `prep.id_column`: the request id), with a `request_id` column to trace it.
Text is cleaned and redacted again (`prep.redact`): nothing unredacted is stored. A row whose
inputs prep would count as the same (`llmops.data.records.dedupe_key`) as a row already in the
raw data or the batch is skipped when its labels agree (a duplicate) and goes to labelling when
they differ (a conflict), as do a label outside the declared values, an answer left without a
value, and a correction of a request with several inputs (which answer it meant is unknown).
Rating-only feedback is counted, not harvested. Up to `harvest.sample_unparsed` answers that did
not parse, chosen by a hash of their request id, go to labelling as well, never to data/raw.

`<labelling>/harvest-<since>-<until>.jsonl` holds one line per row to label: request_id,
reason, detail, `row` (the columns prep reads; null where a value is wanted), the model's raw
text, time, model and version. Provenance (window, log location without credentials, counts,
model versions, min_corrections, when it ran) goes to `<provenance>/<batch>.json`, by default
the `harvest` folder beside --raw: prep lists any other file under data/raw as not read.
The same window gives the same files (the batch's own file is not compared with itself).
Prints one summary line and `corrections: N (min_corrections M): enough|not enough`, N being
the corrections written to data/raw; bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmops.config import atomic
from llmops.config.params import Params, ParamsError, load_params
from llmops.config.task import Field, Task
from llmops.config.textnorm import normalize
from llmops.config.tracking import safe_uri
from llmops.data.readers import read_rows
from llmops.data.records import Record, Rejection, column, declared_label, dedupe_key, parse_row
from llmops.data.redact import redact
from llmops.data.sources import Limits, display, raw_files
from llmops.watch import logs as logfiles

STAMP = "%Y%m%dT%H%M%SZ"


@dataclass
class Harvest:
    """What one window gave: raw rows, rows to label, counts and the model versions seen."""

    rows: list[dict] = field(default_factory=list)
    labelling: list[dict] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)  # "model:version" -> feedback lines


def batch_name(since: datetime, until: datetime) -> str:
    """The batch's file stem: harvest-<since>-<until>, both UTC to the second."""
    return f"harvest-{since.astimezone(UTC):{STAMP}}-{until.astimezone(UTC):{STAMP}}"


def harvest(
    task: Task, params: Params, location: str, raw: Path, since: datetime, until: datetime
) -> Harvest:
    """Read the window's feedback and requests; sort corrections into rows and labelling."""
    out = Harvest()
    corrected = _corrections(location, since, until, out)
    start = since - timedelta(days=params.serve.logs.retain_days)
    reading = logfiles.Reading()
    named: dict[str, dict] = {}
    unparsed: list[dict] = []
    for line in logfiles.read(location, "requests", start, until, reading):
        if line.get("request_id") in corrected:
            named[line["request_id"]] = line
        elif _unparsed(line) and _stamp(line) >= since:
            unparsed.append(line)
            unparsed = _lowest(unparsed, params.harvest.sample_unparsed, slack=1000)
    out.counts["log_lines_skipped"] += sum(reading.skipped.values())
    sorter = _Sorter(task, params, out, _existing(task, params, raw, batch_name(since, until)))
    for request_id, feedback in corrected.items():
        request = named.get(request_id)
        if request is None or request.get("status") != 200 or not request.get("inputs"):
            out.counts["request_not_found"] += 1
        else:
            sorter.corrected(request, feedback["correction"])
    for line in _lowest(unparsed, params.harvest.sample_unparsed):
        out.counts["unparsed_sampled"] += 1
        sorter.unparsed(line)
    return out


def _lowest(lines: list[dict], n: int, slack: int = 0) -> list[dict]:
    """The `n` lines whose request id hashes lowest (the same sample every run), once more
    than `n + slack` are held: memory stays bounded however many answers did not parse."""
    if len(lines) <= n + slack:
        return lines
    return sorted(lines, key=lambda line: _digest(line["request_id"]))[:n]


def _corrections(location: str, since: datetime, until: datetime, out: Harvest) -> dict:
    """The latest feedback line with a correction per request id, in reading order."""
    reading, corrected = logfiles.Reading(), {}
    for line in logfiles.read(location, "feedback", since, until, reading):
        if not _well_formed(line):
            out.counts["malformed_feedback"] += 1
            continue
        out.counts["feedback_read"] += 1
        out.versions[f"{line.get('model')}:{line.get('version')}"] += 1
        if not line.get("correction"):
            out.counts["rating_only"] += 1
            continue
        out.counts["corrections"] += 1
        if corrected.pop(line["request_id"], None) is not None:
            out.counts["superseded"] += 1
        corrected[line["request_id"]] = line
    out.counts["log_lines_skipped"] += sum(reading.skipped.values())
    return corrected


def _well_formed(line: dict) -> bool:
    rating, correction = line.get("rating"), line.get("correction")
    return (
        isinstance(line.get("request_id"), str)
        and isinstance(rating, int)
        and not isinstance(rating, bool)
        and 1 <= rating <= 5
        and (correction is None or isinstance(correction, dict))
        and all(isinstance(k, str) and isinstance(v, str) for k, v in (correction or {}).items())
    )


def _unparsed(line: dict) -> bool:
    inputs, outputs = line.get("inputs"), line.get("outputs")
    return (
        line.get("status") == 200
        and isinstance(line.get("request_id"), str)
        and isinstance(inputs, list)
        and isinstance(outputs, list)
        and len(outputs) == len(inputs)
        and any(isinstance(o, dict) and o.get("parsed") is False for o in outputs)
    )


def _stamp(line: dict) -> datetime:
    stamp = datetime.fromisoformat(line["time"])  # logs.read let only valid times through
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _existing(task: Task, params: Params, raw: Path, batch: str) -> dict[str, tuple]:
    """dedupe key -> (where, labels, valid) of the raw rows, read as prep reads them (a row
    prep rejects, say as too long, still makes the same row a duplicate); the batch's own
    earlier file is left out, so a rerun of a window writes it again."""
    seen: dict[str, tuple] = {}
    for path, encoding in raw_files(raw).read.items():
        if path.name == f"{batch}.jsonl" and path.parent == raw:
            continue
        name = display(path.as_posix())
        for where, obj, text in read_rows(path, name, encoding, Limits.of(params.prep)):
            if isinstance(obj, Rejection):
                continue
            record = parse_row(where, obj, text, task, params.prep)
            if isinstance(record, Record):
                key = _key(task, params, record.fields)
                if key not in seen or not seen[key][2]:
                    seen[key] = (where, _labels(task, record.fields), True)
            elif all(isinstance(obj.get(column(f.name, params.prep)), str) for f in task.inputs):
                fields = {f.name: obj.get(column(f.name, params.prep)) for f in task.fields}
                seen.setdefault(_key(task, params, fields), (where, _labels(task, fields), False))
    return seen


def _key(task: Task, params: Params, fields: dict[str, str]) -> str:
    """The key prep dedupes on: the inputs, cleaned and redacted, up to case and space."""
    parts = [_clean(f, fields[f.name], params) for f in task.inputs]
    return dedupe_key("\n".join(parts))


def _clean(f: Field, value: str, params: Params) -> str:
    """A value as prep stores it: in normal form; a text redacted too."""
    value = normalize(value, params.prep.unicode_form)
    return value if f.is_label else redact(value, params.prep.redact)[0]


def _labels(task: Task, fields: dict) -> tuple:
    return tuple(fields.get(f.name) for f in task.outputs if f.is_label)


@dataclass
class _Sorter:
    """Sorts answers into raw rows, duplicates and rows to label; `seen`: dedupe key ->
    (where, labels, valid) of the raw data and of the rows harvested so far."""

    task: Task
    params: Params
    out: Harvest
    seen: dict[str, tuple]

    def corrected(self, request: dict, correction: dict) -> None:
        """One corrected request: a raw row, a duplicate, or a row to label (with why)."""
        inputs, outputs = request["inputs"], request.get("outputs") or []
        if len(inputs) != 1 or len(outputs) != 1:
            why = f"the request had {len(inputs)} inputs; which answer was corrected is unknown"
            for i, item in enumerate(inputs):
                proposed = _output(outputs[i] if i < len(outputs) else None)
                self.label(request, i, item, proposed | correction, "ambiguous", why)
            return
        item, answer = inputs[0], _output(outputs[0]) | correction
        if not isinstance(item, dict) or any(
            not isinstance(item.get(f.name), str) for f in self.task.inputs
        ):
            self.out.counts["inputs_mismatch"] += 1  # logged by a service of another task
            return
        problem = self.problem(item | answer, set(answer))
        if problem:
            self.label(request, None, item, answer, *problem)
            return
        self.add(request, item, answer, self.fields(item | answer))

    def fields(self, values: dict) -> dict[str, str]:
        """The task's fields as prep will store them: texts cleaned and redacted (PII found
        is counted), labels in their declared spelling."""
        prep, fields = self.params.prep, {}
        for f in self.task.fields:
            value = normalize(values[f.name], prep.unicode_form)
            if f.is_label:
                fields[f.name] = declared_label(f.values, value, prep.label_case)
                continue
            fields[f.name], found = redact(value, prep.redact)
            self.out.counts["pii_redacted"] += sum(found.values())
        return fields

    def add(self, request: dict, item: dict, answer: dict, fields: dict) -> None:
        key, labels = _key(self.task, self.params, fields), _labels(self.task, fields)
        if key in self.seen and self.seen[key][1] == labels:
            self.out.counts["duplicates"] += 1
        elif key in self.seen and self.seen[key][2]:
            where, theirs, _ = self.seen[key]
            names = [f.name for f in self.task.outputs if f.is_label]
            shown = ", ".join(f"{n}={v}" for n, v in zip(names, theirs, strict=True))
            self.label(
                request, None, item, answer, "conflict", f"the same inputs as {where}: {shown}"
            )
        else:
            self.seen[key] = (f"request {request['request_id']}", labels, True)
            self.out.rows.append(self.raw_row(fields, request["request_id"]))

    def problem(self, values: dict, answered: set[str]) -> tuple[str, str] | None:
        """Why an answer cannot be a raw row as it is (reason, detail), or None."""
        unknown = sorted(answered - {f.name for f in self.task.outputs})
        if unknown:
            return "unknown_field", f"{unknown} are not output fields"
        for f in self.task.fields:
            value = values.get(f.name)
            if not isinstance(value, str):
                return "incomplete", f"{f.name}: no value in the answer or the correction"
            if f.is_label and declared_label(f.values, value, self.params.prep.label_case) is None:
                return "unknown_label", f"{f.name}: {value!r:.200} not in {list(f.values)!r:.300}"
        return None

    def raw_row(self, fields: dict, request_id: str) -> dict:
        """A row in the columns prep reads, the request id as its id and for tracing."""
        prep = self.params.prep
        row = {prep.id_column: request_id} if prep.id_column else {}
        row |= {column(f.name, prep): fields[f.name] for f in self.task.fields}
        return row if "request_id" in row else row | {"request_id": request_id}

    def unparsed(self, line: dict) -> None:
        """Each answer of a request that did not parse, to label."""
        several = len(line["inputs"]) > 1
        for i, (item, answer) in enumerate(zip(line["inputs"], line["outputs"], strict=True)):
            if isinstance(answer, dict) and answer.get("parsed") is False:
                why, text = "the answer did not parse", answer.get("text")
                self.label(line, i if several else None, item, {}, "unparsed", why, text)

    def label(
        self,
        request: dict,
        index: int | None,
        item: object,
        answer: dict,
        reason: str,
        detail: str,
        text: object = None,
    ) -> None:
        """A row to label: its columns as far as known (redacted), why, the model's text.
        Its id is the request id (with the input's index when the request had several)."""
        kinds, prep = self.params.prep.redact, self.params.prep
        values = (item if isinstance(item, dict) else {}) | answer
        rid = request["request_id"] if index is None else f"{request['request_id']}-{index}"
        row = {prep.id_column: rid} if prep.id_column else {}
        for f in self.task.fields:
            value = values.get(f.name)
            row[column(f.name, prep)] = redact(value, kinds)[0] if isinstance(value, str) else None
        self.out.counts[reason] += 1
        self.out.counts["to_labelling"] += 1
        self.out.labelling.append(
            {
                "request_id": request["request_id"],
                "reason": reason,
                "detail": redact(detail, kinds)[0],
                "row": row,
                "text": redact(text, kinds)[0] if isinstance(text, str) else None,
                "time": request.get("time"),
                "model": request.get("model"),
                "version": request.get("version"),
            }
        )


def _output(logged: object) -> dict:
    """The parsed answer a request line logged for one input ({} when none)."""
    output = logged.get("output") if isinstance(logged, dict) else None
    return {k: v for k, v in output.items() if v is not None} if isinstance(output, dict) else {}


def write(
    result: Harvest,
    params: Params,
    location: str,
    window: tuple[datetime, datetime],
    folders: tuple[Path, Path, Path],
) -> tuple[Path | None, Path | None, Path | None]:
    """The batch in `raw`, the rows to label and the provenance (when there is anything to
    write), all or none; their paths, None for a file not written."""
    raw, labelling, provenance = folders
    batch = batch_name(*window)
    paths = (
        raw / f"{batch}.jsonl" if result.rows else None,
        labelling / f"{batch}.jsonl" if result.labelling else None,
        provenance / f"{batch}.json" if result.rows or result.labelling else None,
    )
    if paths[2] is None:
        return paths
    with atomic.Outputs() as out:
        for path, rows in zip(paths[:2], (result.rows, result.labelling), strict=True):
            if path is not None:
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                out.file(path).write_text(text, encoding="utf-8")
        record = provenance_record(result, params, location, window, paths)
        out.file(paths[2]).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return paths


def provenance_record(
    result: Harvest,
    params: Params,
    location: str,
    window: tuple[datetime, datetime],
    paths: tuple[Path | None, ...],
) -> dict:
    """Where a batch came from: the window, the logs, the counts, the versions, the run."""
    harvested, least = len(result.rows), params.harvest.min_corrections
    return {
        "batch": batch_name(*window),
        "since": window[0].isoformat(),
        "until": window[1].isoformat(),
        "logs": safe_uri(location),
        "raw": str(paths[0]) if paths[0] else None,
        "labelling": str(paths[1]) if paths[1] else None,
        "counts": {"harvested": harvested, **dict(sorted(result.counts.items()))},
        "min_corrections": least,
        "enough": harvested >= least,
        "versions": dict(sorted(result.versions.items())),
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary(result: Harvest, paths: tuple[Path | None, ...], window, location: str) -> str:
    """The one-line summary printed for a person and the workflow."""
    if paths[0] is None and paths[1] is None:
        since, until = (t.isoformat() for t in window)
        c = result.counts
        return (
            f"nothing to harvest from {safe_uri(location)} in [{since}, {until}): "
            f"{c['feedback_read']} feedback lines, {c['corrections']} corrections, "
            f"{c['duplicates']} duplicates"
        )
    into = f"into {paths[0]}" if paths[0] else "(none new for data/raw)"
    to = f"to {paths[1]}" if paths[1] else "to labelling"
    return f"harvested {len(result.rows)} corrections {into}, {len(result.labelling)} {to}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage too)
        self.exit(2, f"harvest: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--logs", help="log folder or fsspec URI (default: see above)")
    parser.add_argument("--raw", type=Path, required=True, help="raw data folder")
    parser.add_argument("--labelling", type=Path, required=True, help="folder of rows to label")
    parser.add_argument("--provenance", type=Path, help="default: harvest/ beside --raw")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--hours", type=float, help="the window ending now")
    window.add_argument("--since", type=_when, help="window start, ISO 8601 (UTC if no zone)")
    parser.add_argument("--until", type=_when, help="window end, ISO 8601, with --since")
    args = parser.parse_args(argv)
    if (args.since is None) != (args.until is None):
        parser.error("--since and --until go together")
    if args.since is not None and args.since >= args.until:
        parser.error(f"--since {args.since.isoformat()} is not before --until")
    if args.hours is not None and not 0 < args.hours <= 87_600:
        parser.error(f"--hours {args.hours}: expected a number of hours in (0, 87600]")
    return args


def _when(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ISO 8601") from None
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).replace(microsecond=0)


def log_location(given: str | None, params: Params) -> str:
    """--logs, else LLMOPS_LOG_URI, else serve.log_uri, else logs/."""
    return logfiles.location(given, params.serve.log_uri)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        params = load_params(args.params)
        task = Task.from_params(params.task)
        location = log_location(args.logs, params)
        if not logfiles.is_remote(location) and not Path(location).is_dir():
            raise FileNotFoundError(f"--logs {location}: no such folder")
        if args.since is not None:
            window = (args.since, args.until)
        else:
            now = datetime.now(UTC).replace(microsecond=0)
            window = logfiles.window(args.hours or params.harvest.window_hours, now)
        result = harvest(task, params, location, args.raw, *window)
    except (ParamsError, OSError, ValueError, ImportError) as err:
        print(f"harvest: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    provenance = args.provenance or args.raw.parent / "harvest"
    paths = write(result, params, location, window, (args.raw, args.labelling, provenance))
    least = params.harvest.min_corrections
    print(summary(result, paths, window, location))
    enough = "enough" if len(result.rows) >= least else "not enough"
    print(f"corrections: {len(result.rows)} (min_corrections {least}): {enough}")


if __name__ == "__main__":
    main()
