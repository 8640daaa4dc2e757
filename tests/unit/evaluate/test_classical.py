"""The classical floor: TF-IDF + logistic regression per label field and the nearest training
answer per text field, fitted on the training split only, scored like the language
models, and reported beside them by the eval stage."""

from __future__ import annotations

import dataclasses
import json

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.evaluate import classical
from llmops.model.tokenised import read_split
from tests.synthetic import review_rows


def prepared(rows: list[dict]) -> list[dict]:
    return [{"id": r["uid"], "text": r["review_text"], **{k: r[k] for k in
             ("topic", "sentiment", "summary")}} for r in rows]  # fmt: skip


def test_it_learns_every_output_field_and_reports_their_metrics_only(params, task):
    rows = prepared(review_rows(400, seed=5))
    models = classical.fit(rows[:300], task, params.eval.classical)
    metrics = classical.score(models, rows[300:], task)
    assert set(metrics) == {
        "topic_accuracy", "topic_macro_f1", "topic_valid_label",
        "sentiment_accuracy", "sentiment_macro_f1", "sentiment_valid_label",
        "sentiment_rank_error", "summary_rouge_l", "summary_bleu", "summary_chrf",
    }  # fmt: skip
    assert metrics["topic_accuracy"] > 0.9 and metrics["topic_valid_label"] == 1.0
    assert 0 < metrics["summary_rouge_l"] <= 1 and metrics["summary_chrf"] > 0


def test_a_text_field_is_answered_with_the_nearest_training_rows_output(params, task):
    base = prepared(review_rows(3, seed=1))[0]
    train = [
        {**base, "text": "the courier lost my parcel again", "summary": "Lost parcel."},
        {**base, "text": "great price for the quality", "summary": "Good value."},
        {**base, "text": "the courier lost my parcel again", "summary": "Parcel lost."},
    ]
    models = classical.fit(train, task, params.eval.classical)
    queries = [{**base, "text": "my parcel was lost by the courier"},
               {**base, "text": "quality at a great price"}]  # fmt: skip
    answers = classical.predict(models, queries, task)
    assert [a.fields["summary"] for a in answers] == ["Lost parcel.", "Good value."]


def test_a_field_with_one_label_in_training_gets_a_constant(params, task):
    rows = [dict(r, topic="price") for r in prepared(review_rows(50))]
    models = classical.fit(rows, task, params.eval.classical)
    answers = classical.predict(models, rows[:5], task)
    assert {a.fields["topic"] for a in answers} == {"price"}


def test_the_eval_stage_trains_it_on_the_training_split_only(project, adapter, monkeypatch):
    from llmops.stages import eval as stage

    seen = {}
    real_fit = classical.fit

    def spy(rows, task, params):
        seen["ids"] = {r["id"] for r in rows}
        return real_fit(rows, task, params)

    monkeypatch.setattr(classical, "fit", spy)
    params = load_params(project / "params.yaml")
    params = dataclasses.replace(
        params, decoding=dataclasses.replace(params.decoding, max_new_tokens=4)
    )
    results, _ = stage.evaluate(params, project / "data" / "prepared",
                                project / "models" / "base", adapter)  # fmt: skip
    split = {s: {r["id"] for r in read_split(project / "data" / "prepared" / f"{s}.jsonl")}
             for s in ("train", "val", "test")}  # fmt: skip
    assert seen["ids"] == split["train"]
    assert not seen["ids"] & (split["val"] | split["test"])
    assert set(results) == {"base", "tuned", "classical", "majority"}
    assert results["classical"]["topic_accuracy"] > 0.5
    train = read_split(project / "data" / "prepared" / "train.jsonl")
    test = read_split(project / "data" / "prepared" / "test.jsonl")
    always = classical.majority(train, Task.from_params(params.task))
    share = sum(r["topic"] == always["topic"] for r in test) / len(test)
    assert results["majority"]["topic_accuracy"] == round(share, 6)
    assert json.loads(json.dumps(results)) == results  # what metrics/eval.json holds


def test_the_majority_class_is_the_most_frequent_training_label_answered_always(task):
    base = {"id": "x", "text": "t", "topic": "price", "sentiment": "neutral", "summary": "s"}
    train = [dict(base, topic=t, sentiment=s) for t, s in
             [("delivery", "positive"), ("delivery", "negative"), ("price", "positive"),
              ("price", "negative")]]  # fmt: skip
    always = classical.majority(train, task)
    declared = task.field("topic").values
    first = next(v for v in declared if v in ("delivery", "price"))
    assert always["topic"] == first  # a tie: the first declared of the most frequent
    test = [dict(base, topic=t) for t in ["delivery", "price", "price", "quality"]]
    scores = classical.majority_score(train, test, task)
    assert set(scores) == {"topic_accuracy", "topic_macro_f1", "sentiment_accuracy",
                           "sentiment_macro_f1"}  # fmt: skip
    hits = sum(r["topic"] == always["topic"] for r in test) / 4
    assert scores["topic_accuracy"] == hits and 0 < scores["topic_macro_f1"] < hits
