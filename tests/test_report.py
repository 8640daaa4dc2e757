"""The report's pieces: untrusted text made safe for a PR comment, flipped examples judged by
the task's label fields, and the 65,536-character limit (example lists cut first, and the
report says so)."""

from __future__ import annotations

import dataclasses
import json

from llmops import report
from llmops.markdown import safe
from llmops.metrics import metric_names
from llmops.predictions import ModelAnswer, Prediction, parse_predictions, write_predictions
from tests.synthetic import write_params

REFERENCE = {"topic": "price", "sentiment": "neutral", "summary": "ok"}


def record(i: int, right: bool, text: str = "a review", topic_only: bool = False) -> Prediction:
    score = 1.0 if right else 0.0
    scores = {"topic_accuracy": score, "sentiment_accuracy": 1.0 if not topic_only else score}
    answer = ModelAnswer(json.dumps(REFERENCE), dict(REFERENCE), True, "", scores, 9)
    return Prediction(f"R{i:06d}", {"text": text}, dict(REFERENCE), answer, answer)


def test_untrusted_text_cannot_ping_inject_html_or_break_the_table():
    text = safe("@team <img src=https://evil.example/x.png> a|b `code` ![x](https://t.co/p)\nn")
    for bad in ("@", "<", "|", "`", "[", "]", "!"):
        assert bad not in text, bad
    assert "\n" not in text
    assert safe("x" * 1000, limit=10) == "x" * 10 + "…"


def test_flipped_pairs_examples_by_id_when_every_label_field_changes_verdict(task):
    main = [record(1, True), record(2, False), record(3, True), record(4, False)]
    now = [record(1, False), record(2, True), record(3, True), record(5, True)]
    fixed, broken = report.flipped(task, now, main)
    assert [r.id for _, r in fixed] == ["R000002"]
    assert [r.id for _, r in broken] == ["R000001"]
    # Right means every label field right: a wrong sentiment alone makes it wrong.
    half = dataclasses.replace(record(6, True), tuned=dataclasses.replace(
        record(6, True).tuned, scores={"topic_accuracy": 1.0, "sentiment_accuracy": 0.0}))  # fmt: skip
    assert report.flipped(task, [half], [record(6, True)]) == ([], [(record(6, True), half)])


def test_examples_whose_reference_changed_are_not_compared(task):
    other = dataclasses.replace(record(1, False), reference={**REFERENCE, "topic": "quality"})
    assert report.flipped(task, [other], [record(1, True)]) == ([], [])


def test_predictions_round_trip_and_another_format_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    write_predictions(path, [record(1, True), record(2, False)])
    assert parse_predictions(path.read_text()) == [record(1, True), record(2, False)]
    old = '{"id": "T1", "message": "hi", "reference": {}, "tuned": {"output": "x"}}'
    try:
        parse_predictions(old)
    except ValueError as err:
        assert "line 1: not a prediction record" in str(err)
    else:
        raise AssertionError("an old-format record was accepted")


def inputs(root) -> report.Inputs:
    return report.Inputs(
        root / "metrics" / "eval.json", root / "metrics" / "train.json",
        root / "metrics" / "prep.json", root / "metrics" / "base.json",
        root / "data" / "eval" / "predictions.jsonl", root / "reports" / "train" / "t.csv",
        root / "models" / "adapter" / "training.json", root / "prompts",
    )  # fmt: skip


def test_a_huge_report_is_cut_to_the_comment_limit_and_says_so(tmp_path, monkeypatch, task):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"report": {"examples": 100}})
    metrics = dict.fromkeys(metric_names(task), 0.5)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps({"tuned": metrics, "base": metrics}))
    long = "very long review text " * 40
    now = [record(i, i % 2 == 0, long) for i in range(400)]
    main = [record(i, i % 2 == 1, long) for i in range(400)]
    write_predictions(tmp_path / "data" / "eval" / "predictions.jsonl", now)
    # No git repository here: main's committed files are absent, and main's predictions
    # come from this stand-in for the DVC cache.
    monkeypatch.setattr(report, "baseline_predictions", lambda path, ref: (main, ""))
    text = report.build(tmp_path / "params.yaml", "main", inputs(tmp_path))
    assert len(text) < report.LIMIT
    assert "Lists cut to" in text and "to stay under GitHub's 65,536-character" in text
    assert "### Examples that flipped (topic and sentiment right vs not)" in text
    assert "**Wrong → right: 200**" in text and "**Right → wrong: 200**" in text
    assert "more not shown" in text
    assert "| sentiment_rank_error | n/a | 0.5000 | n/a | 0.5000 |" in text
