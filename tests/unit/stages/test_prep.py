"""The prep stage on the tests' own data and on bad input: every row accounted for, PII never
stored, any tabular format, the column mapping, file pins and derived ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmops.data.records import REASONS
from llmops.data.redact import KINDS
from tests.synthetic import (
    INTENT_PARAMS,
    intent_rows,
    project_files,
    review_rows,
    run_prep,
    write_csv,
    write_jsonl,
    write_params,
)

# A wider net than the redactor's own patterns: any email, any run of 9+ digits with
# the usual separators and brackets.
PII = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\(?\d[\d ().\-/]{7,}\d")


def bad(uid: str, **fields) -> dict:
    """A raw review row with one defect (the fields given)."""
    row = {"uid": uid, "review_text": "fine", "topic": "price", "sentiment": "neutral"}
    return {**row, "summary": "x", **fields}


# One defect each, planted among clean rows: reason -> raw lines.
PLANTED = {
    "invalid_utf8": [b'{"uid": "B1", "review_text": "caf\xc3 mail jo@example.com"}'],
    "malformed_json": ['{"uid": "B2", "review_text": ', "not json at all"],
    "not_an_object": ["[1, 2]"],
    "missing_field": [{"uid": "B3", "review_text": "where is it", "topic": "price"}],
    "wrong_type": [bad("B4", review_text=5)],
    "unknown_label": [bad("B5", review_text="call +44 20 7946 0958", topic="misc")],
    "empty_field": [bad("B6", review_text=" \u200b ")],
    "too_long": [bad("B7", review_text="x" * 401)],
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A reviews project whose raw data holds 200 clean rows, PII and one of each defect."""
    clean = review_rows(200, seed=3)
    clean[0]["review_text"] += " Mail me at ann.lee@example.com or call 415-555-0132."
    clean[1]["summary"] = "Card 4111 1111 1111 1111 was charged."
    copies = [
        dict(clean[5], uid="D1"),
        dict(clean[6], uid="D2", review_text=clean[6]["review_text"].upper()),
    ]
    bad = [line for lines in PLANTED.values() for line in lines]
    root = project_files(tmp_path_factory.mktemp("planted"), clean[:100])
    write_jsonl(root / "data" / "raw" / "z-more.jsonl", [*clean[100:], *bad, *copies])
    return run_prep(root), clean


def test_rows_in_equal_rows_kept_plus_rows_quarantined_reason_by_reason(planted):
    out, clean = planted
    metrics = json.loads((out / "metrics.json").read_text())
    expected = {reason: len(lines) for reason, lines in PLANTED.items()}
    expected |= {"duplicate": 1, "near_duplicate": 1}
    assert metrics["rejected"] == {r: expected.get(r, 0) for r in REASONS}
    assert metrics["rows_kept"] == len(clean)
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_rejected"]
    splits = {n: read_jsonl(out / "prepared" / f"{n}.jsonl") for n in ("train", "val", "test")}
    assert sum(map(len, splits.values())) == len(clean)
    assert len(read_jsonl(out / "q" / "rejected.jsonl")) == metrics["rows_rejected"]
    assert metrics["redactions"] == dict.fromkeys(KINDS, 0) | {"EMAIL": 1, "PHONE": 1, "CARD": 1}


def test_prepared_rows_carry_the_task_fields_under_their_names(planted):
    out, _ = planted
    rows = read_jsonl(out / "prepared" / "train.jsonl")
    assert set(rows[0]) == {"id", "text", "topic", "sentiment", "summary", "source"}
    assert rows[0]["id"].startswith("R") and rows[0]["source"].endswith(".jsonl:1")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["labels"]) == {"topic", "sentiment"}
    assert list(metrics["labels"]["sentiment"]["train"]) == ["negative", "neutral", "positive"]
    assert set(metrics["chars"]) == {"text", "summary"}
    val_topics = {r["topic"] for r in read_jsonl(out / "prepared" / "val.jsonl")}
    assert val_topics == {"price", "quality", "delivery", "service"}  # stratified


def test_quarantine_points_back_to_raw_lines(planted):
    out, _ = planted
    for q in read_jsonl(out / "q" / "rejected.jsonl"):
        assert q["reason"] in REASONS and q["detail"], q
        assert Path(q["source"]).exists() and q["line"] >= 1


def test_no_pii_is_stored(planted):
    out, _ = planted
    stored = [*(out / "prepared").iterdir(), out / "q" / "rejected.jsonl"]
    for path in [*stored, out / "report" / "data_report.md"]:
        text = path.read_text(encoding="utf-8")
        assert not PII.findall(text), (path, PII.findall(text)[:5])
    assert (
        "<EMAIL>"
        in (out / "prepared" / "train.jsonl").read_text()
        + (out / "prepared" / "test.jsonl").read_text()
        + (out / "prepared" / "val.jsonl").read_text()
    )
    quarantine = read_jsonl(out / "q" / "rejected.jsonl")
    assert any("<PHONE>" in q["raw"] for q in quarantine)  # bad rows carry PII too
    # A line that could not be parsed (here, bytes that are not UTF-8) is not copied on.
    assert [q["raw"] for q in quarantine if q["reason"] == "invalid_utf8"] == [""]


def test_report_has_a_table_per_label_field_and_the_charts(planted):
    out, _ = planted
    report = (out / "report" / "data_report.md").read_text()
    assert "## `topic` per split" in report and "## `sentiment` per split" in report
    assert "| unknown_label | 1 |" in report and "| near_duplicate | 1 |" in report
    for chart in ("label_balance.png", "text_length.png"):
        assert (out / "report" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_with_other_column_names_a_pinned_test_file_and_no_ids(tmp_path):
    # A classification-only task from CSV files: `utterance` -> text, `intent` -> label.
    params = write_params(tmp_path / "params.yaml", base=INTENT_PARAMS)
    train = intent_rows(300, seed=1)
    test = intent_rows(40, seed=2, held_out=True)
    raw = tmp_path / "raw"
    write_csv(raw / "a-train.csv", [*train, test[0]])  # a test row also in the training file
    write_csv(raw / "official" / "test.csv", test)
    out = run_prep(tmp_path, params, raw)
    splits = {n: read_jsonl(out / "prepared" / f"{n}.jsonl") for n in ("train", "val", "test")}
    assert len(splits["test"]) == 40  # whole, although its duplicate came first
    assert {r["text"] for r in splits["test"]} == {r["utterance"] for r in test}
    assert len(splits["train"]) + len(splits["val"]) == 300
    quarantine = read_jsonl(out / "q" / "rejected.jsonl")
    assert [(q["source"], q["reason"]) for q in quarantine] == [
        ((raw / "a-train.csv").as_posix(), "duplicate")
    ]
    ids = [r["id"] for rows in splits.values() for r in rows]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"h[0-9a-f]{12}", i) for i in ids)
    again = run_prep(tmp_path / "again", params, raw)
    assert (again / "prepared" / "test.jsonl").read_bytes() == (
        out / "prepared" / "test.jsonl"
    ).read_bytes()  # derived ids and order are stable


def test_files_that_are_not_data_are_listed_not_read(tmp_path):
    root = project_files(tmp_path / "p", review_rows(30))
    (root / "data" / "raw" / "notes.txt").write_text("hello")
    out = run_prep(root)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["files_skipped"] == 1 and metrics["rows_in"] == 30
    report = (out / "report" / "data_report.md").read_text()
    assert "## Files not read" in report and "notes.txt" in report


def test_same_input_gives_same_outputs(tmp_path):
    root = project_files(tmp_path / "p", review_rows(60))
    first, second = (
        run_prep(root),
        run_prep(root / "b", root / "params.yaml", root / "data" / "raw"),
    )
    for rel in ("prepared/train.jsonl", "prepared/val.jsonl", "metrics.json",
                "report/label_balance.png"):  # fmt: skip
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_empty_raw_folder_fails_clearly(tmp_path):
    root = project_files(tmp_path / "p", [])
    (root / "data" / "raw" / "reviews.jsonl").unlink()
    with pytest.raises(SystemExit, match=r"prep: .*raw: no rows to prepare \(no data files\)"):
        run_prep(root)
    with pytest.raises(SystemExit, match=r"prep: .*absent: raw data folder not found"):
        run_prep(root, raw=tmp_path / "absent")


def test_only_malformed_lines_fail_and_are_kept(tmp_path):
    root = project_files(tmp_path / "p", ['{"uid": "T1", "review_text": ', "not json", "{'a': 1}"])
    with pytest.raises(SystemExit) as exit_:
        run_prep(root)
    assert "no usable rows: all 3 rows were rejected (malformed_json=3)" in str(exit_.value)
    assert "rejected.jsonl" in str(exit_.value)
    quarantined = read_jsonl(root / "out" / "q" / "rejected.jsonl")
    assert [(q["line"], q["reason"]) for q in quarantined] == [
        (i, "malformed_json") for i in (1, 2, 3)
    ]


def test_too_many_rejections_fail_after_writing_the_quarantine_and_no_splits(tmp_path):
    rows = review_rows(8)
    bad = [dict(rows[0], uid="X1", topic="misc"), {"uid": "X2", "review_text": "hi"}]
    root = project_files(tmp_path / "p", [*rows, *bad], {"prep": {"max_rejected_fraction": 0.1}})
    with pytest.raises(SystemExit) as exit_:
        run_prep(root)
    message = str(exit_.value)
    assert "2 of 10 rows rejected (20.0%), more than prep.max_rejected_fraction=10.0%" in message
    assert "unknown_label=1" in message and "missing_field=1" in message
    assert len(read_jsonl(root / "out" / "q" / "rejected.jsonl")) == 2
    metrics = json.loads((root / "out" / "metrics.json").read_text())
    assert (
        metrics["rows_kept"] == 8
        and "missing_field" in (root / "out" / "report" / "data_report.md").read_text()
    )
    assert not (root / "out" / "prepared").exists()  # a failed run makes no splits
    assert sorted(p.name for p in (root / "out").iterdir()) == ["metrics.json", "q", "report"]


def test_a_split_that_would_be_empty_stops_prep(tmp_path):
    # 30 rows, nothing pinned and no test fraction: there would be nothing to evaluate on.
    root = project_files(tmp_path / "p", review_rows(30), {"prep": {"test_fraction": 0.0}})
    with pytest.raises(SystemExit) as exit_:
        run_prep(root)
    assert "the test split(s) would be empty (30 rows kept)" in str(exit_.value)
    assert "prep.test_fraction" in str(exit_.value) and "prep.pin_files" in str(exit_.value)


def test_a_column_mapping_for_a_field_the_task_lacks_is_refused(tmp_path):
    root = project_files(tmp_path / "p", review_rows(10), {"prep": {"columns": {"txt": "a"}}})
    with pytest.raises(
        SystemExit, match=r"params.yaml: prep.columns names \['txt'\], which are not task fields"
    ):
        run_prep(root)


def test_params_typo_fails_before_reading_data(tmp_path):
    root = project_files(tmp_path / "p", review_rows(10))
    text = (root / "params.yaml").read_text().replace("val_fraction:", "val_fractoin:")
    (root / "params.yaml").write_text(text)
    with pytest.raises(
        SystemExit,
        match=r"params.yaml: prep.val_fractoin: unknown key.*did you mean 'val_fraction'",
    ):
        run_prep(root)
    assert not (root / "out").exists()
