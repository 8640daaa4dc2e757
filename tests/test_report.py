"""The report's pieces: untrusted text made safe for a PR comment, flipped examples, and the
65,536-character limit (example lists cut first, and the report says so)."""

from __future__ import annotations

import json

from llmops import report
from llmops.markdown import SHOWN, safe
from tests.conftest import write_params


def record(i: int, right: bool, message: str = "msg") -> dict:
    score = 1.0 if right else 0.0
    output = json.dumps({"category": "refund", "priority": "high", "reply": "ok"})
    return {
        "id": f"T{i:06d}", "message": message,
        "reference": {"category": "refund", "priority": "high", "reply": "ok"},
        "tuned": {"output": output, "scores": {"category": score, "priority": 1.0}},
    }  # fmt: skip


def test_untrusted_text_cannot_ping_inject_html_or_break_the_table():
    text = safe("@team <img src=https://evil.example/x.png> a|b `code` ![x](https://t.co/p)\nn")
    for bad in ("@", "<", "|", "`", "[", "]", "!"):
        assert bad not in text, bad
    assert "\n" not in text
    assert safe("x" * 1000, limit=10) == "x" * 10 + "…"


def test_flipped_pairs_examples_by_id():
    main = [record(1, True), record(2, False), record(3, True), record(4, False)]
    now = [record(1, False), record(2, True), record(3, True), record(5, True)]
    fixed, broken = report.flipped(now, main)
    assert [r["id"] for _, r in fixed] == ["T000002"]
    assert [r["id"] for _, r in broken] == ["T000001"]


def test_a_huge_report_is_cut_to_the_comment_limit_and_says_so(tmp_path, monkeypatch, project):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"eval": {"report_examples": 100}})
    metrics = {k: 0.5 for k in SHOWN}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps({"tuned": metrics, "base": metrics}))
    long = "very long ticket text " * 40
    now = [record(i, i % 2 == 0, long) for i in range(400)]
    main = [record(i, i % 2 == 1, long) for i in range(400)]
    (tmp_path / "data" / "eval").mkdir(parents=True)
    (tmp_path / "data" / "eval" / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in now)
    )
    # No git repository here: main's committed files are absent, and main's predictions
    # come from this stand-in for the DVC cache.
    monkeypatch.setattr(report, "baseline_predictions", lambda ref: (main, ""))
    text = report.build(tmp_path / "params.yaml", "main", examples=100)
    assert len(text) < report.LIMIT
    assert "Lists cut to" in text and "to stay under GitHub's 65,536-character" in text
    assert "**Wrong → right: 200**" in text and "**Right → wrong: 200**" in text
    assert "more not shown" in text
