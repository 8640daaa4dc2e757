"""Metric definitions, derived from the task, against hand-computed cases; gates that name a
metric the task lacks are refused with the metrics that exist."""

from __future__ import annotations

import dataclasses

import pytest

from llmops.config.params import GateParams, ParamsError
from llmops.evaluate.metrics import (
    bleu,
    check_gates,
    chrf,
    confusion,
    group,
    macro_f1,
    main,
    metric_names,
    metrics,
    rates,
    rouge_l,
    score_example,
    signatures,
    summarize,
    words,
)
from tests.synthetic import write_params

REF = {"topic": "quality", "sentiment": "positive", "summary": "Happy with the quality."}


def answer(task, **fields) -> str:
    import json

    return json.dumps({**REF, **fields})


def test_names_follow_one_pattern_per_field_kind(task):
    names = metric_names(task)
    assert list(names) == [
        "json_valid",
        "topic_accuracy", "topic_macro_f1", "topic_valid_label",
        "sentiment_accuracy", "sentiment_macro_f1", "sentiment_valid_label",
        "sentiment_rank_error",  # ordered labels only
        "summary_rouge_l", "summary_bleu", "summary_chrf",
        "exact_match", "test_loss", "perplexity", "latency_ms", "generated_tokens_per_s",
    ]  # fmt: skip
    assert names["sentiment_rank_error"] is False and names["test_loss"] is False
    assert names["topic_accuracy"] is True
    assert "summary_bleu" not in rates(task) and "sentiment_rank_error" not in rates(task)


def test_a_complete_answer_scores_fully(task):
    scores = score_example(task, task.parse_answer(answer(task)), REF)
    assert scores == {
        "json_valid": 1.0, "topic_accuracy": 1.0, "topic_valid_label": 1.0,
        "sentiment_accuracy": 1.0, "sentiment_valid_label": 1.0, "sentiment_rank_error": 0.0,
        "summary_rouge_l": 1.0, "exact_match": 1.0,
    }  # fmt: skip


def test_a_partial_object_earns_its_fields_but_not_validity(task):
    scores = score_example(task, task.parse_answer('{"topic": "quality"}'), REF)
    assert scores["json_valid"] == 0.0 and scores["topic_accuracy"] == 1.0
    assert scores["sentiment_accuracy"] == 0.0 and scores["summary_rouge_l"] == 0.0
    assert scores["sentiment_rank_error"] == 2.0  # no valid label: the largest distance
    assert scores["exact_match"] == 0.0


def test_rank_error_and_valid_label_by_hand(task):
    near = score_example(task, task.parse_answer(answer(task, sentiment="neutral")), REF)
    far = score_example(task, task.parse_answer(answer(task, sentiment="negative")), REF)
    invented = score_example(task, task.parse_answer(answer(task, topic="colour")), REF)
    assert near["sentiment_rank_error"] == 1.0 and far["sentiment_rank_error"] == 2.0
    assert invented["topic_valid_label"] == 0.0 and invented["json_valid"] == 0.0


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


def test_summary_by_hand(task):
    other = {"topic": "price", "sentiment": "negative", "summary": "Unhappy with the price."}
    outputs = [answer(task, sentiment="neutral"), "garbage"]
    summary = summarize(task, [task.parse_answer(o) for o in outputs], [REF, other])
    assert list(summary) == [m for m in metric_names(task) if m in summary]
    assert summary["json_valid"] == 0.5
    assert summary["topic_accuracy"] == 0.5
    assert summary["sentiment_accuracy"] == 0.0
    assert summary["sentiment_rank_error"] == 1.5  # 1 (neutral vs positive) and 2 (none)
    assert summary["topic_valid_label"] == 0.5
    assert summary["exact_match"] == 0.0
    assert summary["summary_rouge_l"] == 0.5
    assert summary["topic_macro_f1"] == pytest.approx(0.5)  # quality 1.0, price 0.0
    assert 0 < summary["summary_bleu"] < 100
    assert "test_loss" not in summary  # the eval stage adds it


def test_confusion_counts_and_marks_invalid_predictions():
    rows = confusion(["a", "a", "b"], ["a", None, "zzz"], ["a", "b"])
    assert rows == [("a", "(invalid)", 1), ("a", "a", 1), ("b", "(invalid)", 1)]


def test_a_gate_on_a_metric_the_task_lacks_is_a_params_error(task):
    check_gates(task, GateParams({"topic_accuracy": 0.5}, {"sentiment_rank_error": 0.1}, 0.95))
    with pytest.raises(ParamsError) as err:
        check_gates(task, GateParams({"category_accuracy": 0.5}, {}, 0.95))
    message = str(err.value)
    assert "gate.min.category_accuracy: no such metric for this task" in message
    assert "expected one of: json_valid, topic_accuracy," in message
    no_order = dataclasses.replace(task, outputs=tuple(
        dataclasses.replace(f, ordered=False) for f in task.outputs
    ))  # fmt: skip
    with pytest.raises(ParamsError, match=r"gate.max_drop.sentiment_rank_error: no such metric"):
        check_gates(no_order, GateParams({}, {"sentiment_rank_error": 0.1}, 0.95))


def test_cli_lists_the_metrics_and_checks_the_gates(tmp_path, capsys):
    main([str(write_params(tmp_path / "params.yaml"))])
    out = capsys.readouterr().out
    assert "sentiment_rank_error             lower is better" in out
    assert "2 gates name known metrics" in out
    bad = write_params(tmp_path / "bad.yaml", {"gate": {"min": {"reply_bleu": 1.0}}})
    with pytest.raises(SystemExit, match=r"bad.yaml: gate.min.reply_bleu: no such metric"):
        main([str(bad)])


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({"min": {"topic_accuracy": 7.0}}, "gate.min.topic_accuracy: 7 is outside the metric's range [0, 1]"),
        ({"min": {"topic_accuracy": -5.0}}, "gate.min.topic_accuracy: -5 is outside the metric's range [0, 1]"),
        ({"min": {"summary_bleu": 101.0}}, "gate.min.summary_bleu: 101 is outside the metric's range [0, 100]"),
        ({"min": {"sentiment_rank_error": 2.5}}, "gate.min.sentiment_rank_error: 2.5 is outside the metric's range [0, 2]"),
        ({"min": {"perplexity": 0.5}}, "gate.min.perplexity: 0.5 is outside the metric's range [1, ∞)"),
        ({"min": {"test_loss": -0.1}}, "gate.min.test_loss: -0.1 is outside the metric's range [0, ∞)"),
        ({"max_drop": {"topic_accuracy": 1.5}}, "gate.max_drop.topic_accuracy: a drop of 1.5 is more than the metric's whole range [0, 1]"),
        ({"max_drop": {"summary_bleu": 150.0}}, "gate.max_drop.summary_bleu: a drop of 150 is more than the metric's whole range [0, 100]"),
    ],
)  # fmt: skip
def test_a_gate_outside_its_metrics_range_is_a_params_error(task, gates, message):
    with pytest.raises(ParamsError) as err:
        check_gates(task, GateParams(**{"min": {}, "max_drop": {}, "confidence": 0.95} | gates))
    assert str(err.value) == f"params.yaml: {message}"


def test_gates_at_the_ends_of_their_ranges_are_fine(task):
    check_gates(task, GateParams(
        {"topic_accuracy": 1.0, "json_valid": 0.0, "summary_bleu": 100.0, "perplexity": 1.0,
         "latency_ms": 1e9, "sentiment_rank_error": 2.0},
        {"topic_accuracy": 1.0, "summary_bleu": 100.0, "test_loss": 50.0}, 0.95,
    ))  # fmt: skip


def test_every_metric_has_a_range_and_rates_are_the_unit_ones(task):
    known = metrics(task)
    assert list(known) == list(metric_names(task))
    assert rates(task) == tuple(
        n for n, m in known.items() if (m.lo, m.hi, m.higher) == (0, 1, True)
    )
    assert known["sentiment_rank_error"].hi == len(task.field("sentiment").values) - 1


ENGLISH = [  # (hypothesis, reference): punctuation, digits, case, suffixes the stemmer folds
    ("The cats were running quickly to the houses", "A cat runs quick to its house."),
    ("Zizzi is a cheap pub near the riverside; it's kid-friendly", "Zizzi: cheap, by the river"),
    ("Prices from 20-25 pounds, rated 5 out of 5", "It costs £20-25 and is rated 5/5"),
    ("under_scores and CamelCase words", "underscores and camelcase wording"),
]


@pytest.mark.parametrize(("hypothesis", "reference"), ENGLISH)
def test_rouge_l_is_rouge_scores_own_on_english_text(hypothesis, reference):
    from rouge_score import rouge_scorer

    standard = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = standard.score(reference, hypothesis)["rougeL"].fmeasure
    assert rouge_l(hypothesis, reference) == pytest.approx(expected, abs=1e-12)
    assert expected > 0  # the cases share words: a real comparison


def test_rouge_l_scores_text_in_any_script_and_takes_the_best_reference():
    assert words("東京は大きい city") == ["東", "京", "は", "大", "き", "い", "citi"]
    assert rouge_l("Пицца у реки", "пицца у реки") == 1.0  # rouge-score alone gives 0
    assert rouge_l("东京很大", "东京很小") == pytest.approx(0.75)
    best = rouge_l("a cheap pub", ["an expensive restaurant", "a cheap pub by the river"])
    assert best == pytest.approx(rouge_l("a cheap pub", "a cheap pub by the river"))


def test_bleu_and_chrf_score_each_answer_against_all_its_references():
    import sacrebleu

    answers = ["a cheap pub by the river", "a family restaurant"]
    refs = [["the pub is cheap", "a cheap pub by the river"], ["a restaurant for families"]]
    streams = [
        ["the pub is cheap", "a restaurant for families"],
        ["a cheap pub by the river", None],
    ]
    assert bleu(answers, refs) == pytest.approx(sacrebleu.corpus_bleu(answers, streams).score)
    assert chrf(answers, refs) == pytest.approx(sacrebleu.corpus_chrf(answers, streams).score)
    assert bleu(answers, refs) > bleu(answers, [r[0] for r in refs])  # more references help
    signed = signatures()
    assert "nrefs:var" in signed["bleu"] and "tok:13a" in signed["bleu"]
    assert "nrefs:var" in signed["chrf"] and "rouge-score" in signed["rouge_l"]


def test_rows_that_share_inputs_are_one_example_scored_against_every_reference(task):
    rows = [
        {"id": "a", "text": "Pub near river", **REF, "summary": "A pub by the river."},
        {"id": "b", "text": "Something else", **REF, "summary": "Other."},
        {"id": "c", "text": "pub  NEAR river", **REF, "summary": "Riverside pub, cheap."},
    ]
    examples, texts = group(task, rows)
    assert [e["id"] for e in examples] == ["a", "b"]
    assert texts[0]["summary"] == ["A pub by the river.", "Riverside pub, cheap."]
    parsed = task.parse_answer(answer(task, summary="Riverside pub, cheap."))
    scores = score_example(task, parsed, examples[0], texts[0])
    assert scores["summary_rouge_l"] == 1.0 and scores["exact_match"] == 1.0
    assert score_example(task, parsed, examples[0])["exact_match"] == 0.0  # one reference
    result = summarize(task, [parsed, parsed], examples, texts)
    assert result["summary_rouge_l"] == pytest.approx(
        (1.0 + rouge_l("Riverside pub, cheap.", "Other.")) / 2
    )
    assert result["summary_chrf"] > 0 and set(result) >= {"summary_bleu", "summary_chrf"}
