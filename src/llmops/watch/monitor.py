"""Monitor the served model: a window of its logs against the training data, with drift by
Evidently, operational figures and the thresholds of params.yaml `monitor`.

Run: python -m llmops.watch.monitor --params params.yaml --train data/prepared/train.jsonl \
        --out reports/monitor [--logs logs] [--hours H | --since ISO --until ISO] [--mlflow]

Reads the request and feedback lines in [since, until) (`llmops.watch.logs`; `--logs` is a
folder or an fsspec URI, by default LLMOPS_LOG_URI, else params.yaml serve.log_uri, else
logs/; the window is the last `monitor.window_hours` unless given). Drift: the answered
requests' rows (status 200; each input with its answer) against the training split, in
columns read from the task declaration (`llmops.watch.drift`: descriptors and texts of the
inputs, predicted labels; Evidently's tests). With fewer than `monitor.min_requests`
answered requests there is no verdict (the report says why).
Operational figures, overall and per model version: requests and rate per hour, counts per
status and shares per status class, latency p50/p95/p99 of answered requests (nearest rank),
tokens, unparsed answers, ratings 1..5 and the share of feedback carrying a correction.

Writes <out>/report.html (the figures, then Evidently's report) and <out>/figures.json (every
figure, the thresholds and `crossed`: [{threshold, limit, value, message}]; no user text).
Exit 1 with one stderr line per crossed threshold, else 0; bad input: one line, exit 2.
`--mlflow` logs both files to the run of each served registry version (params serve.name;
the version whose number, or whose `bento_model` tag's version, the log lines carry) under
`monitor/<window end>`; without a store or such a version it says so and goes on.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.config.params import MonitorParams
from llmops.config.task import Task
from llmops.config.tracking import safe_uri
from llmops.watch import logs
from llmops.watch.drift import drift, share

STAMP = "%Y-%m-%dT%H-%M-%SZ"  # the window end in MLflow artifact paths


class MonitorError(ValueError):
    """Bad input (training split, log location, window); the message names what and where."""


@dataclass
class Window:
    since: datetime
    until: datetime
    requests: list[dict]
    feedback: list[dict]
    skipped: dict[str, dict[str, int]]


def read_window(location: str, since: datetime, until: datetime) -> Window:
    """The well-formed request and feedback lines in [since, until); the rest counted."""
    shown = safe_uri(location)
    if not logs.is_remote(location) and not Path(location.removeprefix("file://")).is_dir():
        raise MonitorError(f"logs {shown}: no such folder")
    found: dict[str, list[dict]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for kind, ok in (("requests", _request_ok), ("feedback", _feedback_ok)):
        reading = logs.Reading()
        try:
            lines = list(logs.read(location, kind, since, until, reading))
        except (OSError, ValueError, ImportError) as err:
            raise MonitorError(f"logs {shown}: cannot read {kind} ({err})") from None
        found[kind] = [line for line in lines if ok(line)]
        for _ in range(len(lines) - len(found[kind])):
            reading.skip(f"malformed {kind} line")
        skipped[kind] = reading.skipped
    return Window(since, until, found["requests"], found["feedback"], skipped)


def _request_ok(line: dict) -> bool:
    status, latency = line.get("status"), line.get("latency_ms")
    number = type(latency) in (int, float) and math.isfinite(latency)  # JSON may say NaN
    return type(status) is int and (number or status != 200)


def _feedback_ok(line: dict) -> bool:
    return type(line.get("rating")) is int and 1 <= line["rating"] <= 5


def read_training(path: Path, task: Task) -> list[dict]:
    """The training split's rows; fails naming the file and line of a row without a field."""
    if not path.is_file():
        raise MonitorError(f"{path}: training split not found (run the prep stage)")
    rows = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError:
                raise MonitorError(f"{path}:{n}: not a JSON line") from None
            missing = [f.name for f in task.fields if not isinstance(_get(row, f.name), str)]
            if missing:
                raise MonitorError(f"{path}:{n}: expected a string in field {missing[0]!r}")
            rows.append({f.name: row[f.name] for f in task.fields})
    if not rows:
        raise MonitorError(f"{path}: the training split is empty")
    return rows


def answered_rows(task: Task, requests: list[dict]) -> list[dict]:
    """Each input of an answered request with its answer, as {field: value}; an input
    without the task's input fields (another layout) is left out."""
    rows = []
    for line in requests:
        if line["status"] != 200 or not isinstance(line.get("inputs"), list):
            continue
        outputs = line.get("outputs") if isinstance(line.get("outputs"), list) else []
        for i, item in enumerate(line["inputs"]):
            if not all(isinstance(_get(item, f.name), str) for f in task.inputs):
                continue
            answer = _get(outputs[i] if i < len(outputs) else None, "output")
            rows.append(
                {f.name: item[f.name] for f in task.inputs}
                | {f.name: _get(answer, f.name) for f in task.labels}
            )
    return rows


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def operations(requests: list[dict], feedback: list[dict], hours: float) -> dict:
    """Counts, rates, status shares, latency, tokens, unparsed answers and feedback."""
    statuses = Counter(line["status"] for line in requests)
    classes = Counter(f"{s // 100}xx" for s in statuses.elements())
    answered = [line for line in requests if line["status"] == 200]
    latency = sorted(float(line["latency_ms"]) for line in answered)
    outputs = [o for line in answered for o in line.get("outputs") or () if isinstance(o, dict)]
    ratings = Counter(line["rating"] for line in feedback)
    corrected = sum(bool(_get(line, "correction")) for line in feedback)
    tokens = {
        k: sum(_int(line.get(f"{k}_tokens")) for line in answered) for k in ("prompt", "completion")
    }
    return {
        "requests": len(requests),
        "per_hour": len(requests) / hours,
        "answered": len(answered),
        "status": {str(s): n for s, n in sorted(statuses.items())},
        "status_share": {c: classes[c] / len(requests) for c in ("2xx", "4xx", "5xx")}
        if requests
        else {},
        "latency_ms": {f"p{q}": _rank(latency, q) for q in (50, 95, 99)},
        "tokens": tokens | {f"{k}_per_request": share(v, len(answered)) for k, v in tokens.items()},
        "outputs": len(outputs),
        "unparsed": sum(o.get("parsed") is False for o in outputs),
        "unparsed_share": share(sum(o.get("parsed") is False for o in outputs), len(outputs)),
        "feedback": len(feedback),
        "ratings": {str(r): ratings[r] for r in range(1, 6)},
        "mean_rating": share(sum(ratings.elements()), len(feedback)),
        "corrections": corrected,
        "correction_share": share(corrected, len(feedback)),
    }


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _rank(values: list[float], q: int) -> float | None:
    """The nearest-rank percentile: the smallest value with q% of values at or below it."""
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)] if values else None


def thresholds(params: MonitorParams, figures: dict) -> list[dict]:
    """The thresholds the figures cross: [{threshold, limit, value, message}]."""
    ops, found = figures["operations"], figures["drift"]
    checks = [
        ("max_unparsed_share", ops["unparsed_share"], "share of unparsed answers {v:.3f} > {l}"),
        ("max_error_share", ops["status_share"].get("5xx"), "share of 5xx answers {v:.3f} > {l}"),
        ("max_p99_ms", ops["latency_ms"]["p99"], "p99 latency {v:.0f} ms > {l:g}"),
        (
            "max_correction_share",
            ops["correction_share"],
            "share of corrected feedback {v:.3f} > {l}",
        ),
    ]
    crossed = []
    if found.get("verdict"):
        names = ", ".join(n for n, c in found["columns"].items() if c["drifted"])
        message = (
            f"{found['drifted']} of {found['columns_total']} columns drifted (share "
            f"{found['share']:.3f}) >= {params.drift_share}: {names}"
        )
        crossed.append(_crossed("drift_share", params.drift_share, found["share"], message))
    for name, value, text in checks:
        limit = getattr(params, name)
        if value is not None and value > limit:
            crossed.append(_crossed(name, limit, value, text.format(v=value, l=limit)))
    return crossed


def _crossed(name: str, limit: float, value: float, message: str) -> dict:
    return {"threshold": f"monitor.{name}", "limit": limit, "value": value, "message": message}


def monitor(task: Task, params: MonitorParams, window: Window, train: list[dict]) -> tuple:
    """(figures, Evidently snapshot or None) of a window against the training rows."""
    hours = (window.until - window.since).total_seconds() / 3600
    versions = sorted({_version(line) for line in window.requests + window.feedback})
    rows = answered_rows(task, window.requests)
    answered = sum(line["status"] == 200 for line in window.requests)
    snapshot, found = None, {"verdict": None, "rows": len(rows)}
    if answered < params.min_requests:
        found["reason"] = (
            f"{answered} answered requests in the window, fewer than monitor.min_requests "
            f"({params.min_requests})"
        )
    elif not rows:
        found["reason"] = "no answered request holds the task's input fields"
    else:
        try:
            drifted, snapshot = drift(task, params, train, rows)
            found |= drifted
        except ValueError as err:  # a frame Evidently cannot test (all texts empty, say)
            found["reason"] = f"Evidently could not compute drift: {err}"
    figures: dict[str, Any] = {
        "window": {
            "since": window.since.isoformat(),
            "until": window.until.isoformat(),
            "hours": hours,
        },
        "skipped": window.skipped,
        "drift": found,
        "operations": operations(window.requests, window.feedback, hours),
        "versions": {
            v: operations(
                [x for x in window.requests if _version(x) == v],
                [x for x in window.feedback if _version(x) == v],
                hours,
            )
            for v in versions
        },
        "thresholds": {k: v for k, v in vars(params).items() if k != "window_hours"},
    }
    figures["crossed"] = thresholds(params, figures)
    return figures, snapshot


def _version(line: dict) -> str:
    return str(line.get("version") or "unknown")


def write_report(out: Path, figures: dict, snapshot: Any) -> Path:
    """<out>/report.html: the figures, then Evidently's report when there is one."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    ours = _figures_html(figures)
    if snapshot is None:
        page = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Monitor</title></head>"
        path.write_text(f"{page}<body>{ours}</body></html>", encoding="utf-8")
        return path
    snapshot.save_html(str(path))
    text = path.read_text(encoding="utf-8")
    body = re.search(r"<body[^>]*>", text)
    at = body.end() if body else 0
    path.write_text(text[:at] + ours + text[at:], encoding="utf-8")
    return path


def _figures_html(figures: dict) -> str:
    """The window, crossed thresholds, drift verdict and operational figures as HTML."""
    e = html.escape
    window, found = figures["window"], figures["drift"]
    parts = [f"<h1>Monitor: {e(window['since'])} to {e(window['until'])}</h1>"]
    crossed = figures["crossed"]
    parts.append("<h2>Thresholds crossed</h2><ul>" if crossed else "<p>No threshold crossed.</p>")
    parts += [f"<li>{e(c['threshold'])}: {e(c['message'])}</li>" for c in crossed]
    parts.append("</ul>" if crossed else "")
    if found["verdict"] is None:
        parts.append(f"<p>No drift verdict: {e(found['reason'])}.</p>")
    else:
        parts.append(
            f"<p>Drift: {found['drifted']} of {found['columns_total']} columns drifted "
            f"(share {found['share']:.3f}; monitor.drift_share "
            f"{figures['thresholds']['drift_share']}).</p>"
        )
    table = {"all": figures["operations"]} | {
        f"version {v}": o for v, o in figures["versions"].items()
    }
    rows = sorted({key for ops in table.values() for key in _flat(ops)})
    head = "".join(f"<th>{e(name)}</th>" for name in table)
    parts.append(f"<h2>Operations</h2><table border='1'><tr><th>figure</th>{head}</tr>")
    for key in rows:
        cells = "".join(f"<td>{e(_shown(_flat(ops).get(key)))}</td>" for ops in table.values())
        parts.append(f"<tr><td>{e(key)}</td>{cells}</tr>")
    parts.append("</table><hr>")
    return "<section style='font-family:sans-serif;margin:1em'>" + "".join(parts) + "</section>"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    return {
        k: v for key, inner in value.items() for k, v in _flat(inner, f"{prefix}{key}.").items()
    }


def _shown(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def log_to_mlflow(name: str, out: Path, figures: dict) -> list[str]:
    """Log the report and figures to the run of each registry version the window's lines
    carry; one line per version saying where they went, or why not."""
    from mlflow.exceptions import MlflowException

    from llmops.config import tracking
    from llmops.ship import registry

    uri = tracking.tracking_uri()
    where = tracking.safe_uri(uri)
    local = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
    if local is not None and not Path(local).is_file():
        return [f"mlflow: no tracking store at {where}: not logged"]
    if not registry.NAME.fullmatch(name):
        return [f"mlflow: serve.name {name!r} is not a registered model name: not logged"]
    at = f"monitor/{datetime.fromisoformat(figures['window']['until']):{STAMP}}"
    try:
        client = registry.client()
        known = client.search_model_versions(f"name = '{name}'")
        said = []
        for version in figures["versions"]:
            match = [v for v in known if _carries(v, version)]
            if not match:
                said.append(f"mlflow: {name} has no version {version!r} in {where}: not logged")
                continue
            for each in ("report.html", "figures.json"):
                client.log_artifact(match[0].run_id, str(out / each), artifact_path=at)
            said.append(
                f"mlflow: logged to run {match[0].run_id} ({name} v{match[0].version}) {at}"
            )
        return said or ["mlflow: no model version in the window: not logged"]
    except (MlflowException, OSError) as err:
        return [f"mlflow: {where}: {registry.scrub(str(err), uri).splitlines()[0]}: not logged"]


def _carries(version: Any, logged: str) -> bool:
    """Whether the registry `version` is the one log lines name `logged`: its number, or the
    version of the BentoML model it was tagged with (`bento_model`, name:version)."""
    bento = (version.tags or {}).get("bento_model", "")
    return str(version.version) == logged or (bool(bento) and bento.rpartition(":")[2] == logged)


def parse_window(args: argparse.Namespace, hours: float) -> tuple[datetime, datetime]:
    """[since, until) from --since/--until (ISO, UTC if no zone) or the last `hours`."""
    try:
        until = _stamp(args.until) if args.until else None
        if args.since:
            since = _stamp(args.since)
            until = until or datetime.now(UTC)
        else:
            since, until = logs.window(args.hours or hours, until)
    except ValueError as err:
        raise MonitorError(f"window: {err}; expected ISO 8601 times") from None
    if since >= until:
        raise MonitorError(f"window: --since {since.isoformat()} is not before {until.isoformat()}")
    return since, until


def _stamp(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--logs", default=None, help="folder or fsspec URI of the logs")
    parser.add_argument("--train", type=Path, required=True, help="the prepared training split")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--since", default=None)
    parser.add_argument("--until", default=None)
    parser.add_argument("--mlflow", action="store_true", help="log to the served version's run")
    args = parser.parse_args(argv)
    if args.hours is not None and (args.since or not args.hours > 0):
        parser.error("--hours takes a positive number, and not with --since")
    return args


def main(argv: list[str] | None = None) -> None:
    from llmops.config.params import ParamsError, load_params

    args = parse_args(argv)
    try:
        params = load_params(args.params)
        task = Task.from_params(params.task)
        location = logs.location(args.logs, params.serve.log_uri)
        since, until = parse_window(args, params.monitor.window_hours)
        train = read_training(args.train, task)
        window = read_window(location, since, until)
        figures, snapshot = monitor(task, params.monitor, window, train)
        write_report(args.out, figures, snapshot)
        text = json.dumps(figures, indent=2, allow_nan=False)
        (args.out / "figures.json").write_text(text + "\n", encoding="utf-8")
    except (MonitorError, ParamsError, OSError) as err:
        print(f"monitor: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    ops, found = figures["operations"], figures["drift"]
    verdict = found["reason"] if found["verdict"] is None else f"drift share {found['share']:.3f}"
    print(
        f"monitor: {ops['requests']} requests, {ops['answered']} answered; {verdict}; "
        f"wrote {args.out / 'report.html'} and figures.json"
    )
    if args.mlflow:
        for line in log_to_mlflow(params.serve.name, args.out, figures):
            print(line)
    for item in figures["crossed"]:
        print(f"{item['threshold']}: {item['message']}", file=sys.stderr)
    if figures["crossed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
