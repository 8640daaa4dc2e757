"""The report's pieces: untrusted text made safe for a PR comment, flipped examples judged by
the task's label fields from the per-example records, deltas with intervals coloured only
when significant, the classical floor, and the 65,536-character limit (example lists cut
first, and the report says so)."""

from __future__ import annotations

import json

from llmops import gate, report
from llmops.flips import flipped, right
from llmops.markdown import change_cell, safe
from llmops.metrics import metric_names
from llmops.predictions import (
    ModelAnswer,
    Prediction,
    example_rows,
    parse_examples,
    parse_predictions,
    write_examples,
    write_predictions,
)
from llmops.stats import compare, pair
from tests.synthetic import write_params

REFERENCE = {"topic": "price", "sentiment": "neutral", "summary": "ok"}


def record(i: int, ok: bool, text: str = "a review", sentiment_ok: bool = True) -> Prediction:
    parsed = dict(REFERENCE, topic="price" if ok else "quality")
    parsed["sentiment"] = "neutral" if sentiment_ok else "positive"
    scores = {"json_valid": 1.0, "topic_accuracy": float(ok), "topic_valid_label": 1.0,
              "sentiment_accuracy": float(sentiment_ok), "sentiment_valid_label": 1.0,
              "sentiment_rank_error": 0.0 if sentiment_ok else 1.0, "summary_rouge_l": 1.0,
              "exact_match": float(ok and sentiment_ok)}  # fmt: skip
    answer = ModelAnswer(json.dumps(parsed), parsed, True, "", scores, 9)
    return Prediction(f"R{i:06d}", {"text": text}, dict(REFERENCE), answer, answer)


def test_untrusted_text_cannot_ping_inject_html_or_break_the_table():
    text = safe("@team <img src=https://evil.example/x.png> a|b `code` ![x](https://t.co/p)\nn")
    for bad in ("@", "<", "|", "`", "[", "]", "!"):
        assert bad not in text, bad
    assert "\n" not in text
    assert safe("x" * 1000, limit=10) == "x" * 10 + "…"


def test_the_per_example_record_round_trips_and_holds_labels_not_text(task, tmp_path):
    rows = example_rows(task, [record(1, True), record(2, False)])
    assert list(rows[0]) == [
        "id", "reference", "json_valid", "topic_accuracy", "topic_valid_label",
        "sentiment_accuracy", "sentiment_valid_label", "sentiment_rank_error",
        "summary_rouge_l", "exact_match", "topic_answer", "topic_reference",
        "sentiment_answer", "sentiment_reference",
    ]  # fmt: skip
    assert rows[1]["topic_answer"] == "quality" and rows[1]["topic_accuracy"] == "0"
    write_examples(tmp_path / "e.csv", rows)
    assert parse_examples((tmp_path / "e.csv").read_text()) == rows
    assert "a review" not in (tmp_path / "e.csv").read_text()  # inputs stay in DVC


def test_flipped_pairs_examples_when_every_label_field_changes_verdict(task):
    main = example_rows(task, [record(1, True), record(2, False), record(3, True)])
    now = example_rows(task, [record(1, False), record(2, True), record(3, True)])
    fixed, broken = flipped(task, pair(main, now))
    assert [r["id"] for _, r in fixed] == ["R000002"]
    assert [r["id"] for _, r in broken] == ["R000001"]
    # Right means every label field right: a wrong sentiment alone makes it wrong.
    (half,) = example_rows(task, [record(6, True, sentiment_ok=False)])
    assert not right(task, half)


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


def test_only_a_change_whose_interval_excludes_zero_is_coloured(task):
    main = example_rows(task, [record(i, i % 5 != 0) for i in range(300)])
    noise = example_rows(task, [record(i, (i % 5 != 0) != (i in (1, 10))) for i in range(300)])
    drop = example_rows(task, [record(i, i % 2 == 0) for i in range(300)])
    small = compare("topic_accuracy", pair(main, noise), task, 0.95)
    large = compare("topic_accuracy", pair(main, drop), task, 0.95)
    assert change_cell(small, small.new, small.old).endswith("≈ noise")
    assert change_cell(large, large.new, large.old).endswith("🔴")
    assert change_cell(None, 0.5, 0.4) == "+0.1000 (untested)"


def inputs(root) -> report.Inputs:
    return report.Inputs(
        root / "metrics" / "eval.json", root / "metrics" / "eval_examples.csv",
        root / "metrics" / "train.json", root / "metrics" / "prep.json",
        root / "metrics" / "base.json", root / "data" / "eval" / "predictions.jsonl",
        root / "reports" / "train" / "t.csv", root / "models" / "adapter" / "training.json",
        root / "prompts",
    )  # fmt: skip


def test_a_huge_report_is_cut_to_the_comment_limit_and_says_so(tmp_path, monkeypatch, task):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"report": {"examples": 100}})
    metrics = dict.fromkeys(metric_names(task), 0.5)
    classical = {"topic_accuracy": 0.9, "topic_macro_f1": 0.88}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(
        json.dumps({"tuned": metrics, "base": metrics, "classical": classical})
    )
    long = "very long review text " * 40
    now = [record(i, i % 2 == 0, long) for i in range(400)]
    main = [record(i, i % 2 == 1, long) for i in range(400)]
    write_predictions(tmp_path / "data" / "eval" / "predictions.jsonl", now)
    write_examples(tmp_path / "metrics" / "eval_examples.csv", example_rows(task, now))
    main_rows = tmp_path / "main.csv"
    write_examples(main_rows, example_rows(task, main))
    # No git repository here: main's committed record comes from this stand-in for
    # `git show`, and its predictions are not in any DVC cache.
    monkeypatch.setattr(gate, "at_ref", lambda ref, path, cwd=None: (
        main_rows.read_text() if path.endswith("eval_examples.csv") else None))  # fmt: skip
    monkeypatch.setattr(report, "baseline_outputs", lambda path, ref: None)
    text = report.build(tmp_path / "params.yaml", "main", inputs(tmp_path))
    assert len(text) < report.LIMIT
    assert "Lists cut to" in text and "to stay under GitHub's 65,536-character" in text
    assert "### Examples that flipped (topic and sentiment right vs not)" in text
    assert "**Wrong → right: 200**" in text and "**Right → wrong: 200**" in text
    assert "more not shown" in text and "its labels come from its record" in text
    assert '{"topic": "quality", "sentiment": "neutral"}' in text.replace("&#34;", '"')
    assert "| topic_accuracy | n/a | 0.5000 | ±0 [" in text  # paired: the same share right
    assert "| topic_accuracy | n/a | 0.5000 |" in text and "| 0.9000 | 0.5000 |" in text
    assert "| summary_rouge_l | n/a | 0.5000 | ±0 | — | 0.5000 |" in text
    assert "400 of 400 test examples paired with the baseline" in text
