"""`make monitor` (llmops.watch.monitor) on logs written here in the service's layout, for the
tests' own reviews task: the real Evidently drift report, the real fsspec memory filesystem
and a real MLflow registry in a temporary SQLite store. Nothing is mocked."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pytest

from llmops.watch import monitor
from tests.synthetic import SENTIMENTS, TOPICS, review_rows, write_jsonl, write_params

UNTIL = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=24)  # the window spans two log days
WINDOW = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
TRAIN_ROWS, WINDOW_ROWS = 300, 80
# Cyrillic words for the shifted window: another script, words no training input holds.
_OTHER = "доставка криптовалюта кошелёк приложение сломалось вчера снова ошибка оплата сервер"


def prepared(row: dict) -> dict:
    """A raw review row as the prep stage writes it: the task's field names, an id."""
    return {"id": row["uid"], "text": row["review_text"], "topic": row["topic"],
            "sentiment": row["sentiment"], "summary": row["summary"]}  # fmt: skip


def with_pii(rows: list[dict], every: int) -> list[dict]:
    """Every `every`-th row's text holding a redaction placeholder, as the log holds it."""
    return [r | {"text": r["text"] + " Mail me at <EMAIL>."} if i % every == 0 else r
            for i, r in enumerate(rows)]  # fmt: skip


def request(i: int, rows: list[dict], **line) -> dict:
    """A request-log line answered as `rows` say (their labels are the predictions)."""
    outputs = [{"output": {"topic": r["topic"], "sentiment": r["sentiment"], "summary": "ok"},
                "text": "{}", "parsed": True, "finish_reason": "stop"} for r in rows]  # fmt: skip
    return {
        "time": (SINCE + timedelta(minutes=10 * (i + 1))).isoformat(timespec="milliseconds"),
        "request_id": f"r{i}", "endpoint": "answer", "model": "reviews-model",
        "version": "v1", "status": 200, "latency_ms": 200.0 + i,
        "inputs": [{"text": r["text"]} for r in rows], "outputs": outputs,
        "prompt_tokens": 10, "completion_tokens": 5, "error": "",
    } | line  # fmt: skip


def feedback(i: int, rating: int, correction: dict | None, version: str = "v1") -> dict:
    return {"time": (SINCE + timedelta(minutes=10 * (i + 1), seconds=30)).isoformat(),
            "request_id": f"r{i}", "rating": rating, "correction": correction, "comment": "",
            "model": "reviews-model", "version": version}  # fmt: skip


def write_logs(folder: Path, requests: list, feedbacks: list = ()) -> Path:
    """Lines in the local layout: one file per kind and UTC day (by the line's time)."""
    for kind, lines in (("requests", requests), ("feedback", feedbacks)):
        days: dict[str, list] = {}
        for line in lines:
            day = line["time"][:10] if isinstance(line, dict) else SINCE.date().isoformat()
            days.setdefault(day, []).append(line)
        for day, chunk in days.items():
            write_jsonl(folder / f"{kind}-{day}.jsonl", chunk)
    return folder


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working folder: params.yaml (the reviews task at test sizes), a prepared training
    split, and unseen rows drawn like it."""
    write_params(tmp_path / "params.yaml")
    rows = with_pii([prepared(r) for r in review_rows(TRAIN_ROWS + WINDOW_ROWS)], every=10)
    write_jsonl(tmp_path / "train.jsonl", rows[:TRAIN_ROWS])
    (tmp_path / "unseen.json").write_text(json.dumps(rows[TRAIN_ROWS:]))  # same distribution
    return tmp_path


def run(root: Path, logs: str | Path, *extra: str) -> int:
    """main() on the working folder's files; its exit status."""
    argv = ["--params", str(root / "params.yaml"), "--train", str(root / "train.jsonl"),
            "--logs", str(logs), "--out", str(root / "out"), *WINDOW, *extra]  # fmt: skip
    try:
        monitor.main(argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def figures(root: Path) -> dict:
    return json.loads((root / "out" / "figures.json").read_text())


def test_an_in_distribution_window_does_not_drift_and_exits_0(work, capsys):
    rows = json.loads((work / "unseen.json").read_text())
    logs = write_logs(work / "logs", [request(i, [r]) for i, r in enumerate(rows)])

    assert run(work, logs) == 0
    found = figures(work)
    drift = found["drift"]
    assert drift["verdict"] is False and drift["rows"] == WINDOW_ROWS
    assert set(drift["columns"]) == {"text", "text.chars", "text.oov", "text.non_latin",
                                     "text.pii", "topic", "sentiment"}  # fmt: skip
    assert drift["share"] < 0.5 and drift["columns_total"] == 7
    assert drift["columns"]["text"]["method"].endswith("text content drift")
    assert drift["means"]["text.non_latin"] == {"current": 0.0, "reference": 0.0}
    assert drift["means"]["text.pii"]["current"] == pytest.approx(0.1)
    assert found["crossed"] == []
    assert capsys.readouterr().err == ""
    page = (work / "out" / "report.html").read_text()
    assert "Monitor: 2026-12-05T12:00:00+00:00" in page and "No threshold crossed." in page
    assert "Dataset Drift is NOT detected" in page  # Evidently's report data, in its head
    assert page.index("<body>") < page.index("No threshold crossed.")  # ours opens the body


def test_a_shifted_window_drifts_exits_1_and_names_the_threshold(work, capsys):
    rng = random.Random(1)
    words = _OTHER.split()
    rows = [{"text": " ".join(rng.choices(words, k=120)) + (" <PHONE>" if i % 2 else ""),
             "topic": TOPICS[0], "sentiment": SENTIMENTS[0]} for i in range(WINDOW_ROWS)]  # fmt: skip
    logs = write_logs(work / "logs", [request(i, [r]) for i, r in enumerate(rows)])

    assert run(work, logs) == 1
    drift = figures(work)["drift"]
    assert drift["verdict"] is True and drift["share"] >= 0.5
    drifted = {name for name, column in drift["columns"].items() if column["drifted"]}
    assert {"text", "text.chars", "text.oov", "text.non_latin", "text.pii", "topic"} <= drifted
    assert drift["means"]["text.non_latin"]["current"] > 0.99  # all but the Latin <PHONE>
    assert drift["means"]["text.oov"]["current"] == 1.0  # "phone" is unseen too
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("monitor.drift_share: ")
    assert f"of 7 columns drifted (share {drift['share']:.3f}) >= 0.5" in err[0]
    crossed = figures(work)["crossed"]
    assert [c["threshold"] for c in crossed] == ["monitor.drift_share"]
    assert crossed[0]["limit"] == 0.5 and crossed[0]["value"] == drift["share"]
    page = (work / "out" / "report.html").read_text()
    assert "Dataset Drift is detected" in page and "<li>monitor.drift_share: " in page


def crafted() -> tuple[list, list]:
    """v1: 100 answered requests, latency 1..100 ms, 4 unparsed answers; v2: one answered
    in 7000 ms, two 503s and a 429. Feedback: 5 lines on v1 (2 corrected), 1 on v2."""
    row = {"text": "the lamp arrived late", "topic": "delivery", "sentiment": "negative"}
    lines = []
    for i in range(100):
        line = request(i, [row], latency_ms=float(i + 1))
        line["outputs"][0]["parsed"] = i % 25 != 0
        lines.append(line)
    lines.append(request(100, [row], version="v2", latency_ms=7000.0, prompt_tokens=20))
    for i, status in ((101, 503), (102, 503), (103, 429)):
        lines.append(request(i, [], version="v2", status=status, latency_ms=3.0, inputs=[],
                             prompt_tokens=0, completion_tokens=0, error="busy"))  # fmt: skip
    fix = {"topic": "price"}
    notes = [feedback(0, 5, None), feedback(1, 5, fix), feedback(2, 4, None),
             feedback(3, 1, fix), feedback(4, 3, None), feedback(100, 2, fix, "v2")]  # fmt: skip
    return lines, notes


def test_operational_figures_are_exact_overall_and_per_version(work, capsys):
    write_params(work / "params.yaml", {"monitor": {"max_p99_ms": 90, "min_requests": 500,
                                                       "max_error_share": 0.01}})  # fmt: skip
    logs = write_logs(work / "logs", *crafted())

    assert run(work, logs) == 1
    found = figures(work)
    ops, v1, v2 = found["operations"], found["versions"]["v1"], found["versions"]["v2"]
    assert ops["requests"] == 104 and ops["answered"] == 101
    assert ops["per_hour"] == pytest.approx(104 / 24)
    assert ops["status"] == {"200": 101, "429": 1, "503": 2}
    assert ops["status_share"] == pytest.approx({"2xx": 101 / 104, "4xx": 1 / 104,
                                                 "5xx": 2 / 104})  # fmt: skip
    # nearest rank over 1..100 and 7000: p99 is the 100th value
    assert ops["latency_ms"] == {"p50": 51.0, "p95": 96.0, "p99": 100.0}
    assert v1["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert v2["latency_ms"] == {"p50": 7000.0, "p95": 7000.0, "p99": 7000.0}
    assert ops["tokens"]["prompt"] == 1020 and ops["tokens"]["completion"] == 505
    assert ops["unparsed"] == 4 and ops["unparsed_share"] == pytest.approx(4 / 101)
    assert ops["ratings"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 2}
    assert ops["corrections"] == 3 and ops["correction_share"] == 0.5
    assert v1["correction_share"] == pytest.approx(0.4) and v2["correction_share"] == 1.0
    assert v1["requests"] == 100 and v2["status"] == {"200": 1, "429": 1, "503": 2}
    assert v2["status_share"]["5xx"] == 0.5
    assert found["thresholds"]["max_p99_ms"] == 90
    crossed = {c["threshold"]: c for c in found["crossed"]}
    assert set(crossed) == {"monitor.max_p99_ms", "monitor.max_error_share"}
    assert crossed["monitor.max_p99_ms"]["value"] == 100.0
    assert crossed["monitor.max_error_share"]["value"] == pytest.approx(2 / 104)
    err = capsys.readouterr().err.splitlines()
    assert "monitor.max_p99_ms: p99 latency 100 ms > 90" in err
    assert "monitor.max_error_share: share of 5xx answers 0.019 > 0.01" in err
    page = (work / "out" / "report.html").read_text()
    assert "version v2" in page and "latency_ms.p99" in page and "<td>7000</td>" in page


def test_fewer_answered_requests_than_min_requests_give_no_drift_verdict(work):
    rows = json.loads((work / "unseen.json").read_text())[:19]  # min_requests: 20
    logs = write_logs(work / "logs", [request(i, [r]) for i, r in enumerate(rows)])

    assert run(work, logs) == 0
    found = figures(work)
    assert found["drift"]["verdict"] is None and "columns" not in found["drift"]
    reason = "19 answered requests in the window, fewer than monitor.min_requests (20)"
    assert found["drift"]["reason"] == reason
    assert found["operations"]["answered"] == 19
    assert "No drift verdict: 19 answered" in (work / "out" / "report.html").read_text()


def test_corrupt_lines_are_counted_not_fatal(work):
    rows = json.loads((work / "unseen.json").read_text())[:3]
    good = [request(i, [r]) for i, r in enumerate(rows)]
    cut = json.dumps(good[0])[:40]  # a line a crash cut short
    good[2].pop("version")  # a line from a service that logged none
    bad = [cut, "not json", json.dumps({"no": "time"}), json.dumps(request(9, rows, status="ok")),
           json.dumps(request(8, rows, latency_ms=None)),
           json.dumps(request(7, rows, latency_ms=float("nan")))]  # fmt: skip
    notes = [feedback(0, 5, None), feedback(1, 9, None), "{"]
    logs = write_logs(work / "logs", [*good, *bad], notes)

    assert run(work, logs) == 0
    found = figures(work)
    assert found["operations"]["requests"] == 3 and found["operations"]["feedback"] == 1
    assert found["operations"]["latency_ms"]["p99"] == 202.0
    assert {v: o["requests"] for v, o in found["versions"].items()} == {"unknown": 1, "v1": 2}
    assert found["skipped"] == {
        "requests": {"not JSON": 2, "no valid time": 1, "malformed requests line": 3},
        "feedback": {"not JSON": 1, "malformed feedback line": 1},
    }


def test_an_object_store_location_reads_the_same_as_the_folder(work):
    lines, notes = crafted()
    write_params(work / "params.yaml", {"monitor": {"min_requests": 500}})  # no Evidently
    run(work, write_logs(work / "logs", lines, notes))
    local = figures(work)
    fs = fsspec.filesystem("memory")
    root = "memory://monitor-test"
    try:
        for kind, items in (("requests", lines), ("feedback", notes)):
            for n, start in enumerate(range(0, len(items), 40)):  # batches, as the sink writes
                chunk = items[start : start + 40]
                text = "".join(json.dumps(x) + "\n" for x in chunk)
                fs.pipe(f"{root}/{kind}/{chunk[0]['time'][:10]}/batch-{n}.jsonl", text.encode())
        run(work, root)
        remote = figures(work)
    finally:
        fs.rm(root, recursive=True)
    assert remote["operations"] == local["operations"] and remote["versions"] == local["versions"]
    assert remote["operations"]["requests"] == 104


@pytest.mark.parametrize(
    ("broken", "says"),
    [("train", "train.jsonl: training split not found"),
     ("logs", "logs {root}/nowhere: no such folder"),
     ("uri", "logs nosuch://bucket/logs: cannot read requests"),
     ("params", "monitor.max_p99_ms")],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(work, capsys, broken, says):
    logs = write_logs(work / "logs", [])
    if broken == "train":
        (work / "train.jsonl").unlink()
    elif broken == "logs":
        logs = work / "nowhere"
    elif broken == "uri":
        logs = "nosuch://bucket/logs"  # no fsspec filesystem has this protocol
    else:
        write_params(work / "params.yaml", {"monitor": {"max_p99_ms": "fast"}})

    assert run(work, logs) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("monitor: ")
    assert says.format(root=work) in err[0]
    assert not (work / "out" / "figures.json").exists()


def test_a_training_row_without_a_field_is_named_by_line(work, capsys):
    rows = [json.loads(x) for x in (work / "train.jsonl").read_text().splitlines()]
    del rows[4]["sentiment"]
    write_jsonl(work / "train.jsonl", rows)

    assert run(work, write_logs(work / "logs", [])) == 2
    assert "train.jsonl:5: expected a string in field 'sentiment'" in capsys.readouterr().err


def test_mlflow_logs_the_report_to_the_served_versions_run(work, monkeypatch, capsys):
    from mlflow import MlflowClient

    monkeypatch.chdir(work)  # the store's artifacts (mlruns/) land in tmp_path
    uri = f"sqlite:///{work / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("llmops")).info.run_id
    client.create_registered_model("reviews-model")
    served = client.create_model_version("reviews-model", f"runs:/{run_id}/adapter", run_id,
                                         tags={"bento_model": "reviews-model:v1"})  # fmt: skip
    lines, notes = crafted()  # versions v1 (registered as version 1 by its Bento) and v2
    write_params(work / "params.yaml", {"monitor": {"min_requests": 500}})

    assert run(work, write_logs(work / "logs", lines, notes), "--mlflow") == 0
    at = "monitor/2026-12-06T12-00-00Z"
    logged = {Path(a.path).name for a in client.list_artifacts(run_id, at)}
    assert logged == {"report.html", "figures.json"} and str(served.version) == "1"
    out = capsys.readouterr().out
    assert f"mlflow: logged to run {run_id} (reviews-model v1) {at}" in out
    assert "mlflow: reviews-model has no version 'v2'" in out


def test_mlflow_without_a_store_says_so_and_exits_by_the_thresholds(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'absent.db'}")
    logs = write_logs(work / "logs", crafted()[0][:10])

    assert run(work, logs, "--mlflow") == 0
    assert "mlflow: no tracking store at sqlite:///" in capsys.readouterr().out
    assert not (work / "absent.db").exists()


def test_the_logs_default_to_llmops_log_uri_and_hours_end_at_until(work, monkeypatch):
    lines, notes = crafted()
    monkeypatch.setenv("LLMOPS_LOG_URI", str(write_logs(work / "logs", lines, notes)))
    write_params(work / "params.yaml", {"monitor": {"min_requests": 500}})
    argv = ["--params", str(work / "params.yaml"), "--train", str(work / "train.jsonl"),
            "--out", str(work / "out"), "--hours", "2",
            "--until", (SINCE + timedelta(hours=5)).isoformat()]  # fmt: skip

    monitor.main(argv)
    found = figures(work)
    assert found["window"] == {"since": "2026-12-05T15:00:00+00:00",
                               "until": "2026-12-05T17:00:00+00:00", "hours": 2.0}  # fmt: skip
    # request i is logged 10(i+1) minutes after SINCE: i = 17..28 fall in [3 h, 5 h)
    ops = found["operations"]
    assert ops["requests"] == 12 and ops["per_hour"] == 6.0 and ops["feedback"] == 0
    assert ops["latency_ms"] == {"p50": 23.0, "p95": 29.0, "p99": 29.0}


def test_a_bad_window_is_one_line_and_exit_2(work, capsys):
    argv = ["--params", str(work / "params.yaml"), "--train", str(work / "train.jsonl"),
            "--logs", str(write_logs(work / "logs", [])), "--out", str(work / "out"),
            "--since", "yesterday"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        monitor.main(argv)
    assert done.value.code == 2
    assert "monitor: window: " in capsys.readouterr().err
