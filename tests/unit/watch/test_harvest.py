"""make harvest (llmops.watch.harvest): corrections from feedback lines become a raw batch that
the real prep stage reads; doubtful answers go to labelling. Logs are written here as the
service writes them (local layout, and an fsspec memory:// object store)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pytest

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.config.tracking import safe_uri
from llmops.watch.harvest import batch_name, harvest, main
from tests.synthetic import (
    PARAMS,
    project_files,
    review_rows,
    run_prep,
    write_jsonl,
    write_split_params,
)

SINCE, UNTIL = "2026-12-06T00:00:00+00:00", "2026-12-07T00:00:00+00:00"
T = "2026-12-06T{}:00.000+00:00"
BATCH = "harvest-20261206T000000Z-20261207T000000Z"
EMAIL_TEXT = "The kettle: it broke after two days. Write to jane.doe@example.com please."
LONG = "x" * 250  # summary max_chars is 200: prep must quarantine it as too_long
EXISTING = review_rows(60, seed=3)


def request(rid: str, time: str, text: str, answer: dict | None, raw_text: str = "") -> dict:
    """A request line as llmops.serve.context logs it; `answer` None: it did not parse."""
    output = answer or {"topic": None, "sentiment": None, "summary": None}
    return {
        "time": time, "request_id": rid, "endpoint": "answer", "model": "reviews-model",
        "version": "v2" if rid == "r-old" else "v3", "status": 200, "latency_ms": 41.5,
        "inputs": [{"text": text}],
        "outputs": [{"output": output, "text": raw_text or json.dumps(output),
                     "parsed": answer is not None, "finish_reason": "stop"}],
        "prompt_tokens": 30, "completion_tokens": 14, "error": None,
    }  # fmt: skip


def feedback(rid: str, time: str, rating: int, correction: dict | None = None) -> dict:
    return {"time": time, "request_id": rid, "rating": rating, "correction": correction,
            "comment": "", "model": "reviews-model", "version": "v3"}  # fmt: skip


def answer(topic: str, sentiment: str, summary: str = "Fine.") -> dict:
    return {"topic": topic, "sentiment": sentiment, "summary": summary}


def log_lines() -> tuple[list[dict], list[dict]]:
    """(requests, feedback) of one day, one case per request id (see the asserts)."""
    dup, clash = EXISTING[0], EXISTING[1]
    other = next(t for t in ("price", "quality", "delivery") if t != clash["topic"])
    requests = [
        request("r-old", "2026-12-05T22:00:00.000+00:00", "The tent: arrived the next "
                "morning, well packed.", answer("quality", "positive")),
        request("r-pii", T.format("01:00"), EMAIL_TEXT, answer("quality", "positive")),
        request("r-ok", T.format("02:00"), "The lamp: arrived three weeks late.",
                answer("quality", "negative", "Unhappy with the quality.")),
        request("r-ok2", T.format("02:30"), "  the LAMP: arrived three   weeks late. ",
                answer("delivery", "negative")),
        request("r-dup", T.format("03:00"), dup["review_text"], answer("price", "neutral")),
        request("r-clash", T.format("04:00"), clash["review_text"],
                answer(clash["topic"], clash["sentiment"])),
        request("r-badlabel", T.format("05:00"), "The router: drops the signal hourly.",
                answer("quality", "negative")),
        request("r-long", T.format("06:00"), "The drill: the support team was wonderful.",
                answer("service", "positive")),
        request("r-rated", T.format("07:00"), "The jacket: solid and well made.",
                answer("quality", "positive")),
        request("r-unp1", T.format("08:00"), "The blender: call me on 415-555-0132, it leaks",
                None, "topic: quality?? call 415-555-0132"),
        request("r-unp2", T.format("09:00"), "The mixer: meh.", None, "I think"),
    ]  # fmt: skip
    fb = [
        feedback("r-old", T.format("00:30"), 2, {"topic": "delivery"}),
        feedback("r-pii", T.format("01:10"), 1,
                 {"sentiment": "negative", "summary": "Broken; reply to jane.doe@example.com"}),
        feedback("r-ok", T.format("02:10"), 2, {"topic": "price"}),
        feedback("r-ok", T.format("02:20"), 2, {"topic": "delivery"}),  # supersedes the last
        feedback("r-ok2", T.format("02:40"), 1, {"summary": "Unhappy with the quality."}),
        feedback("r-dup", T.format("03:10"), 1,
                 {k: dup[k] for k in ("topic", "sentiment", "summary")}),
        feedback("r-clash", T.format("04:10"), 1, {"topic": other}),
        feedback("r-badlabel", T.format("05:10"), 1, {"topic": "connectivity"}),
        feedback("r-long", T.format("06:10"), 3, {"summary": LONG}),
        feedback("r-rated", T.format("07:10"), 5),
        feedback("r-missing", T.format("07:20"), 1, {"topic": "price"}),  # no such request
        feedback("r-pii", "2026-12-07T00:00:00.000+00:00", 1, {"topic": "price"}),  # after
    ]  # fmt: skip
    return requests, fb


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A reviews project laid out like the repository, and a day of its service's logs."""
    root = project_files(tmp_path / "project", EXISTING)
    write_split_params(root, PARAMS)
    requests, fb = log_lines()
    write_jsonl(root / "logs" / "requests-2026-12-05.jsonl", requests[:1])
    write_jsonl(root / "logs" / "requests-2026-12-06.jsonl", requests[1:])
    write_jsonl(root / "logs" / "feedback-2026-12-06.jsonl", fb[:-1])
    write_jsonl(root / "logs" / "feedback-2026-12-07.jsonl", fb[-1:])
    return root


def run(root: Path, *extra: str, logs: str | None = None) -> None:
    main(["--params", str(root / "params.yaml"), "--logs", logs or str(root / "logs"),
          "--raw", str(root / "data" / "raw"), "--labelling", str(root / "data" / "labelling"),
          "--since", SINCE, "--until", UNTIL, *extra])  # fmt: skip


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_corrections_are_sorted_into_rows_duplicates_and_labelling(root):
    params = load_params(root / "params.yaml")
    got = harvest(
        Task.from_params(params.task), params, str(root / "logs"), root / "data" / "raw",
        datetime.fromisoformat(SINCE), datetime.fromisoformat(UNTIL),
    )  # fmt: skip
    assert [r["request_id"] for r in got.rows] == ["r-old", "r-pii", "r-ok", "r-long"]
    by_id = {r["uid"]: r for r in got.rows}
    # The model's answer with the correction applied, the rest of the answer kept.
    assert by_id["r-ok"] | {"review_text": ""} == {
        "uid": "r-ok", "review_text": "", "topic": "delivery", "sentiment": "negative",
        "summary": "Unhappy with the quality.", "request_id": "r-ok",
    }  # fmt: skip
    assert by_id["r-old"]["topic"] == "delivery"  # its request is older than the window
    assert by_id["r-pii"]["review_text"] == EMAIL_TEXT.replace("jane.doe@example.com", "<EMAIL>")
    assert by_id["r-pii"]["summary"] == "Broken; reply to <EMAIL>"
    assert by_id["r-pii"]["sentiment"] == "negative" and by_id["r-pii"]["topic"] == "quality"
    labelled = {r["request_id"]: r for r in got.labelling}
    assert {k: v["reason"] for k, v in labelled.items()} == {
        "r-clash": "conflict", "r-badlabel": "unknown_label", "r-unp1": "unparsed",
        "r-unp2": "unparsed",
    }  # fmt: skip
    assert "data/raw/reviews.jsonl:2" in labelled["r-clash"]["detail"]
    assert "'connectivity' not in" in labelled["r-badlabel"]["detail"]
    assert labelled["r-badlabel"]["row"]["topic"] == "connectivity"
    unp = labelled["r-unp1"]
    assert unp["row"] == {"uid": "r-unp1", "review_text": "The blender: call me on <PHONE>, it leaks",
                          "topic": None, "sentiment": None, "summary": None}  # fmt: skip
    assert unp["text"] == "topic: quality?? call <PHONE>"
    c = got.counts
    assert (c["feedback_read"], c["corrections"], c["rating_only"], c["superseded"]) == (
        11,
        10,
        1,
        1,
    )
    assert (c["duplicates"], c["conflict"], c["unknown_label"], c["unparsed_sampled"]) == (
        2,
        1,
        1,
        2,
    )
    assert (c["request_not_found"], c["to_labelling"], c["pii_redacted"]) == (1, 4, 2)
    assert dict(got.versions) == {"reviews-model:v3": 11}


def test_the_batch_is_read_by_prep_like_any_raw_file(root, capsys, caplog):
    run(root)
    out = capsys.readouterr().out.splitlines()
    batch = root / "data" / "raw" / f"{BATCH}.jsonl"
    labelling = root / "data" / "labelling" / f"{BATCH}.jsonl"
    assert out == [
        f"harvested 4 corrections into {batch}, 4 to {labelling}",
        "corrections: 4 (min_corrections 3): enough",
    ]
    assert "jane.doe" not in batch.read_text() and "415-555" not in labelling.read_text()
    assert sorted(p.name for p in (root / "data" / "raw").iterdir()) == [
        f"{BATCH}.jsonl",
        "reviews.jsonl",
    ]
    record = json.loads((root / "data" / "harvest" / f"{BATCH}.json").read_text())
    assert (record["since"], record["until"], record["logs"]) == (SINCE, UNTIL, str(root / "logs"))
    assert record["counts"]["harvested"] == 4 and record["counts"]["duplicates"] == 2
    assert record["counts"]["to_labelling"] == 4 and record["counts"]["rating_only"] == 1
    assert (record["min_corrections"], record["enough"]) == (3, True)
    assert record["versions"] == {"reviews-model:v3": 11}

    with caplog.at_level(logging.INFO):
        prep = run_prep(root)
    assert "not read" not in caplog.text  # no provenance or other file under data/raw
    prepared = [r for s in ("train", "val", "test") for r in rows(prep / "prepared" / f"{s}.jsonl")]
    harvested = {r["id"]: r for r in prepared if BATCH in r["source"]}
    assert sorted(harvested) == ["r-ok", "r-old", "r-pii"]
    assert "<EMAIL>" in harvested["r-pii"]["text"] and harvested["r-pii"]["sentiment"] == "negative"
    assert len(prepared) == len(EXISTING) + 3
    rejected = rows(prep / "q" / "rejected.jsonl")
    assert [(r["reason"], r["line"]) for r in rejected] == [("too_long", 4)]
    assert BATCH in rejected[0]["source"] and '"uid": "r-long"' in rejected[0]["raw"]


def test_the_same_window_twice_writes_the_same_files(root, capsys):
    run(root)
    batch = root / "data" / "raw" / f"{BATCH}.jsonl"
    labelling = root / "data" / "labelling" / f"{BATCH}.jsonl"
    first = batch.read_bytes(), labelling.read_bytes()
    run(root)
    assert (batch.read_bytes(), labelling.read_bytes()) == first
    assert len(rows(batch)) == 4
    record = json.loads((root / "data" / "harvest" / f"{BATCH}.json").read_text())
    assert (record["counts"]["harvested"], record["counts"]["duplicates"]) == (4, 2)
    # An overlapping window finds its corrections in the first batch: nothing new for raw.
    capsys.readouterr()
    run(root, "--since", "2026-12-06T01:00:00Z", "--until", "2026-12-06T12:00:00Z")
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "corrections: 0 (min_corrections 3): not enough"
    assert sorted(p.name for p in (root / "data" / "raw").iterdir()) == [
        f"{BATCH}.jsonl",
        "reviews.jsonl",
    ]
    other = "harvest-20261206T010000Z-20261206T120000Z"
    record = json.loads((root / "data" / "harvest" / f"{other}.json").read_text())
    assert record["counts"]["duplicates"] == 5 and record["raw"] is None  # 3 + r-ok2, r-dup


def test_an_object_store_location(root, capsys):
    requests, fb = log_lines()
    fs = fsspec.filesystem("memory")
    base = "memory://harvest-test"
    try:
        with fs.open(f"{base}/requests/2026-12-05/b-0001.jsonl", "w") as fh:
            fh.write(json.dumps(requests[0]) + "\n")
        with fs.open(f"{base}/requests/2026-12-06/b-0002.jsonl", "w") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in requests[1:]))
        with fs.open(f"{base}/feedback/2026-12-06/b-0003.jsonl", "w") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in (fb[0], fb[2])))
        run(root, logs=base)
    finally:
        fs.rm("/harvest-test", recursive=True)
    assert (
        capsys.readouterr().out.splitlines()[1] == "corrections: 2 (min_corrections 3): not enough"
    )
    got = rows(root / "data" / "raw" / f"{BATCH}.jsonl")
    assert [(r["uid"], r["topic"]) for r in got] == [("r-old", "delivery"), ("r-ok", "price")]
    record = json.loads((root / "data" / "harvest" / f"{BATCH}.json").read_text())
    assert record["logs"] == base


def test_safe_uri_drops_credentials():
    assert safe_uri("s3://AKIAKEY:s3cr3t@bucket/llmops?token=abc#x") == "s3://bucket/llmops"
    assert safe_uri("logs") == "logs"


def test_a_request_of_several_inputs_goes_to_labelling(tmp_path):
    root = project_files(tmp_path / "p", EXISTING, {"prep": {"id_column": None}})
    line = request("r-many", T.format("01:00"), "The tent: fine.", answer("price", "neutral"))
    line["inputs"].append({"text": "The kettle: fine."})
    line["outputs"].append(line["outputs"][0])
    write_jsonl(root / "logs" / "requests-2026-12-06.jsonl", [line])
    write_jsonl(root / "logs" / "feedback-2026-12-06.jsonl",
                [feedback("r-many", T.format("01:05"), 1, {"topic": "quality"})])  # fmt: skip
    params = load_params(root / "params.yaml")
    got = harvest(
        Task.from_params(params.task), params, str(root / "logs"), root / "data" / "raw",
        datetime.fromisoformat(SINCE), datetime.fromisoformat(UNTIL),
    )  # fmt: skip
    assert got.rows == [] and got.counts["ambiguous"] == 2
    assert [r["row"]["review_text"] for r in got.labelling] == [
        "The tent: fine.",
        "The kettle: fine.",
    ]
    assert {r["row"]["topic"] for r in got.labelling} == {"quality"}
    assert "uid" not in got.labelling[0]["row"]  # no id column declared


def test_without_an_id_column_rows_keep_the_request_id(tmp_path):
    root = project_files(tmp_path / "p", EXISTING, {"prep": {"id_column": None}})
    write_jsonl(
        root / "logs" / "requests-2026-12-06.jsonl",
        [request("r-1", T.format("01:00"), "The tent: leaks.", answer("quality", "neutral"))],
    )
    write_jsonl(root / "logs" / "feedback-2026-12-06.jsonl",
                [feedback("r-1", T.format("01:05"), 1, {"sentiment": "negative"})])  # fmt: skip
    run(root)
    assert rows(root / "data" / "raw" / f"{BATCH}.jsonl") == [
        {"review_text": "The tent: leaks.", "topic": "quality", "sentiment": "negative",
         "summary": "Fine.", "request_id": "r-1"}
    ]  # fmt: skip


def test_nothing_to_harvest_writes_nothing(tmp_path, capsys):
    root = project_files(tmp_path / "p", EXISTING, {"harvest": {"min_corrections": 1}})
    write_jsonl(
        root / "logs" / "feedback-2026-12-06.jsonl", [feedback("r-1", T.format("01:00"), 4)]
    )
    run(root)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("nothing to harvest from ")
    assert "1 feedback lines, 0 corrections" in out[0]
    assert out[1] == "corrections: 0 (min_corrections 1): not enough"
    assert sorted(p.name for p in (root / "data" / "raw").iterdir()) == ["reviews.jsonl"]
    assert not (root / "data" / "labelling").exists() and not (root / "data" / "harvest").exists()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--logs", "/nonexistent/logs"], "--logs /nonexistent/logs: no such folder"),
        (["--since", "2026-12-06"], "--since and --until go together"),
        (["--since", "yesterday", "--until", UNTIL], "argument --since: 'yesterday': expected ISO"),
        (["--since", UNTIL, "--until", SINCE], "is not before --until"),
        (["--hours", "-3"], "--hours -3.0: expected a number of hours"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, says):
    root = project_files(tmp_path / "p", EXISTING)
    (root / "logs").mkdir()
    argv = ["--params", str(root / "params.yaml"), "--logs", str(root / "logs"),
            "--raw", str(root / "data" / "raw"), "--labelling", str(root / "lab"), *extra]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and says in err, err


def test_bad_params_name_the_file(tmp_path, capsys):
    root = project_files(tmp_path / "p", EXISTING, {"harvest": {"min_corrections": 0}})
    (root / "logs").mkdir()
    with pytest.raises(SystemExit) as exit_:
        run(root)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "params.yaml" in err and "harvest.min_corrections" in err


def test_batch_name_is_the_window_in_utc():
    since = datetime(2026, 12, 6, 1, 0, 0, tzinfo=UTC)
    assert batch_name(since, datetime.fromisoformat("2026-12-06T12:30:05+02:00")) == (
        "harvest-20261206T010000Z-20261206T103005Z"
    )


def test_the_default_window_ends_now_and_logs_come_from_the_environment(
    tmp_path, capsys, monkeypatch
):
    root = project_files(tmp_path / "p", EXISTING)
    now = datetime.now(UTC)
    stamp = (now - timedelta(minutes=30)).isoformat(timespec="milliseconds")
    line = request("r-now", stamp, "The tent: leaks.", answer("quality", "neutral"))
    write_jsonl(root / "env-logs" / f"requests-{now:%Y-%m-%d}.jsonl", [line])
    write_jsonl(root / "env-logs" / f"feedback-{now:%Y-%m-%d}.jsonl",
                [feedback("r-now", stamp, 1, {"sentiment": "negative"})])  # fmt: skip
    monkeypatch.setenv("LLMOPS_LOG_URI", str(root / "env-logs"))
    main(["--params", str(root / "params.yaml"), "--raw", str(root / "data" / "raw"),
          "--labelling", str(root / "lab"), "--hours", "1"])  # fmt: skip
    assert (
        capsys.readouterr().out.splitlines()[1] == "corrections: 1 (min_corrections 3): not enough"
    )
    (batch,) = (root / "data" / "raw").glob("harvest-*.jsonl")
    assert [r["uid"] for r in rows(batch)] == ["r-now"]
