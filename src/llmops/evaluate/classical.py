"""The classical floors, beside every evaluation: TF-IDF + logistic regression per label
field, TF-IDF nearest-neighbour retrieval per text field, and the majority class.

    models = fit(train_rows, task, params.eval.classical)
    metrics = score(models, test_rows, task, texts)   # as for the language models
    always = majority_score(train_rows, test_rows, task)  # the most frequent label, always

Both read TF-IDF features of the row's input fields (joined by newlines), fitted on the
training split only, in about a second. For each label output field a logistic
regression answers one of the field's labels; for each text output field the answer is
the output of the training row whose inputs are nearest (cosine similarity; the first
such row on a tie), which is what copying the most similar training answer gives. Both
are scored by `llmops.evaluate.metrics` like the language models (text fields against all
of an example's references), so a reviewer sees at once whether the fine-tuned model
beats a model anyone could build. The majority class is the floor under both: each label
field answered with its most frequent training label, whatever the input (its accuracy
and macro-F1); a model near it has learned the label's frequency, not the input.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmops.config.params import ClassicalParams
from llmops.config.task import Parsed, Task
from llmops.evaluate.metrics import Texts, summarize

KINDS = ("accuracy", "macro_f1", "valid_label", "rank_error", "rouge_l", "bleu", "chrf")
CHUNK = 512  # query rows whose similarities to the training rows are computed at once


def inputs(rows: Sequence[dict], task: Task) -> list[str]:
    """The text a classical model reads: the row's input fields, one per line."""
    return [task.input_text(r) for r in rows]


class Nearest:
    """Answers with the output of the training row whose inputs are most like the query's."""

    def __init__(self, vectorizer, answers: list[str]):
        self.vectorizer, self.answers = vectorizer, answers

    def fit(self, text: list[str]) -> Nearest:
        self.matrix = self.vectorizer.fit_transform(text).T.tocsr()
        return self

    def predict(self, text: list[str]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(text), CHUNK):
            query = self.vectorizer.transform(text[start : start + CHUNK])
            similar = (query @ self.matrix).toarray()  # rows are L2-normalised: cosine
            out += [self.answers[i] for i in similar.argmax(axis=1)]
        return out


def _vectorizer(params: ClassicalParams):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer=params.analyzer,
        ngram_range=(params.ngram_min, params.ngram_max),
        sublinear_tf=True,
    )


def fit(rows: list[dict], task: Task, params: ClassicalParams) -> dict:
    """One fitted model per output field: a pipeline per label field (a constant when
    training has one label), a `Nearest` per text field."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    text = inputs(rows, task)
    models: dict = {}
    for field in task.labels:
        labels = [r[field.name] for r in rows]
        one = len(set(labels)) < 2
        model = make_pipeline(
            _vectorizer(params),
            DummyClassifier(strategy="most_frequent")
            if one
            else LogisticRegression(C=params.C, max_iter=2000),
        )
        models[field.name] = model.fit(text, labels)
    for field in task.texts:
        models[field.name] = Nearest(_vectorizer(params), [r[field.name] for r in rows]).fit(text)
    return models


def predict(models: dict, rows: list[dict], task: Task) -> list[Parsed]:
    """Each row's answer as the models give it (not a JSON answer: `valid` is False)."""
    text = inputs(rows, task)
    answers = {name: list(model.predict(text)) for name, model in models.items()}
    return [
        Parsed(False, {f.name: answers[f.name][i] for f in task.outputs}) for i in range(len(rows))
    ]


def score(
    models: dict, rows: list[dict], task: Task, texts: Sequence[Texts] | None = None
) -> dict[str, float]:
    """The per-field metrics of the classical models on `rows` (names as in metrics);
    `texts`: each row's references per text field."""
    metrics = summarize(task, predict(models, rows, task), rows, texts)
    names = {f"{f.name}_{kind}" for f in task.outputs for kind in KINDS}
    return {k: round(v, 6) for k, v in metrics.items() if k in names}


def majority(rows: Sequence[dict], task: Task) -> dict[str, str]:
    """Each label output field's most frequent training label (the first declared on a tie)."""
    out = {}
    for field in task.labels:
        counts = {value: 0 for value in field.values}
        for row in rows:
            counts[row[field.name]] = counts.get(row[field.name], 0) + 1
        out[field.name] = max(counts, key=lambda value: counts[value])  # first of the most
    return out


def majority_score(train: Sequence[dict], rows: Sequence[dict], task: Task) -> dict[str, float]:
    """Accuracy and macro-F1 per label field of always answering its majority label."""
    labels = Task(task.inputs, task.labels)
    always = majority(train, task)
    parsed = [Parsed(False, dict(always)) for _ in rows]
    metrics = summarize(labels, parsed, list(rows))
    names = [f"{f.name}_{kind}" for f in task.labels for kind in ("accuracy", "macro_f1")]
    return {name: round(metrics[name], 6) for name in names}
