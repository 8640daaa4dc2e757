"""Metric definitions against hand-computed cases, malformed and partial outputs included."""

from __future__ import annotations

import pytest

from llmops.metrics import confusion, macro_f1, parse_answer, rouge_l, score_example, summarize

REF = {"category": "refund", "priority": "high", "reply": "We have opened your refund."}


def test_a_complete_answer_is_valid_and_scores_fully():
    parsed = parse_answer(
        '{"category": "refund", "priority": "high", "reply": "We have opened your refund."}'
    )
    assert parsed.valid and parsed.error == ""
    assert score_example(parsed, REF) == {
        "json_valid": 1.0, "category": 1.0, "priority": 1.0, "exact": 1.0, "rouge_l": 1.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "valid", "category", "error"),
    [
        ('{"category": "refund", "priority": "high"', False, None, "not JSON"),  # cut off
        ('{"category": "refund"}', False, "refund", "missing or non-string: priority, reply"),
        ('{"category": "refund", "priority": 3, "reply": "x"}', False, "refund", "priority"),
        ('["refund", "high"]', False, None, "not a JSON object: list"),
        ("Sure! Here is the answer: refund", False, None, "not JSON"),
        ("", False, None, "not JSON"),
        ('  {"category": "refund", "priority": "low", "reply": ""}\n', True, "refund", ""),
    ],
)
def test_malformed_and_partial_outputs_are_scored_not_raised(text, valid, category, error):
    parsed = parse_answer(text)
    assert parsed.valid is valid
    assert parsed.category == category
    assert error in parsed.error


def test_a_partial_object_earns_its_fields_but_not_validity():
    scores = score_example(parse_answer('{"category": "refund"}'), REF)
    assert scores == {"json_valid": 0.0, "category": 1.0, "priority": 0.0, "exact": 0.0,
                      "rouge_l": 0.0}  # fmt: skip


def test_rouge_l_by_hand():
    # hypothesis 4 words, reference 5; LCS "we opened your refund" = 4
    # precision 4/4, recall 4/5, F1 = 2 * 1 * 0.8 / 1.8 = 0.8889
    assert rouge_l("We opened your refund", "We have opened your refund.") == pytest.approx(
        0.888889, abs=1e-6
    )
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("totally different", "nothing shared") == 0.0
    assert rouge_l("Refund, OPENED!", "refund opened") == 1.0  # case and punctuation ignored


def test_macro_f1_by_hand():
    truth = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", None]
    # a: tp 1, fp 0, fn 1 -> 2/3; b: tp 1, fp 1, fn 1 -> 1/2; c: never seen -> 0
    assert macro_f1(truth, predicted, ["a", "b"]) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # "c" occurs nowhere: it neither helps nor hurts (a perfect model scores 1.0)
    assert macro_f1(truth, predicted, ["a", "b", "c"]) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert macro_f1(["a", "b"], ["a", "b"], ["a", "b", "c"]) == 1.0
    # "c" predicted but never true: it counts, with F1 0
    assert macro_f1(["a", "b"], ["a", "c"], ["a", "b", "c"]) == pytest.approx(1 / 3)


def test_summary_by_hand():
    refs = [REF, {"category": "billing", "priority": "low", "reply": "Your invoice is attached."}]
    outputs = [
        '{"category": "refund", "priority": "low", "reply": "We have opened your refund."}',
        "garbage",
    ]
    summary = summarize([parse_answer(o) for o in outputs], refs, ["refund", "billing"])
    assert summary["json_valid"] == 0.5
    assert summary["category_accuracy"] == 0.5
    assert summary["priority_accuracy"] == 0.0
    assert summary["exact_match"] == 0.0
    assert summary["reply_rouge_l"] == 0.5
    assert summary["category_macro_f1"] == pytest.approx(0.5)  # refund 1.0, billing 0.0
    assert 0 < summary["reply_bleu"] < 100


def test_confusion_counts_and_marks_invalid_predictions():
    rows = confusion(["a", "a", "b"], ["a", None, "zzz"], ["a", "b"])
    assert rows == [("a", "(invalid)", 1), ("a", "a", 1), ("b", "(invalid)", 1)]
