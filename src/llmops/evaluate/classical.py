"""The classical floor: TF-IDF + logistic regression per label field, beside every evaluation.

    models = fit(train_rows, task, params.eval.classical)
    metrics = score(models, test_rows, task)   # the label-field metrics, as for the models

For each label output field, a scikit-learn pipeline of TF-IDF features of the row's input
fields (joined by newlines) and a logistic regression is trained on the training split
only, in about a second. It answers every test row with one of the field's labels and is
scored by `llmops.evaluate.metrics` like the language models, so a reviewer sees at once whether the
fine-tuned model beats a model anyone could train. Text fields have no classical
counterpart.
"""

from __future__ import annotations

from llmops.config.params import ClassicalParams
from llmops.config.task import Parsed, Task
from llmops.evaluate.metrics import summarize


def inputs(rows: list[dict], task: Task) -> list[str]:
    """The text a classical model reads: the row's input fields, one per line."""
    return ["\n".join(r[f.name] for f in task.inputs) for r in rows]


def fit(rows: list[dict], task: Task, params: ClassicalParams) -> dict:
    """One fitted pipeline per label output field (a constant when training has one label)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    text = inputs(rows, task)
    models = {}
    for field in task.labels:
        labels = [r[field.name] for r in rows]
        one = len(set(labels)) < 2
        model = make_pipeline(
            TfidfVectorizer(
                analyzer=params.analyzer,
                ngram_range=(params.ngram_min, params.ngram_max),
                sublinear_tf=True,
            ),
            DummyClassifier(strategy="most_frequent")
            if one
            else LogisticRegression(C=params.C, max_iter=2000),
        )
        models[field.name] = model.fit(text, labels)
    return models


def predict(models: dict, rows: list[dict], task: Task) -> list[Parsed]:
    """Each row's answer as the models give it: labels only, no text fields."""
    text = inputs(rows, task)
    labels = {name: list(model.predict(text)) for name, model in models.items()}
    return [
        Parsed(False, {f.name: labels[f.name][i] if f.is_label else None for f in task.outputs})
        for i in range(len(rows))
    ]


def score(models: dict, rows: list[dict], task: Task) -> dict[str, float]:
    """The label-field metrics of the classical models on `rows` (names as in metrics)."""
    metrics = summarize(task, predict(models, rows, task), rows)
    kinds = ("accuracy", "macro_f1", "valid_label", "rank_error")
    names = {f"{f.name}_{kind}" for f in task.labels for kind in kinds}
    return {k: round(v, 6) for k, v in metrics.items() if k in names}
