"""Evaluate the base model and the fine-tuned one on the test split; write metrics and plots.

Run: python -m llmops.stages.eval --params params.yaml --data data/prepared \
        --base models/base --adapter models/adapter --metrics metrics/eval.json \
        --examples metrics/eval_examples.csv --plots reports/eval \
        --predictions data/eval/predictions.jsonl

Both models (one load: the adapter switched off is the base model) answer every test row
through `llmops.model.inference` (the path the service uses) with the adapter's prompt
template and params.yaml `decoding`, and are scored by `llmops.evaluate.metrics` for the
task declared in params.yaml. Also measured: the answer-token loss on the test split (and
its perplexity), generation time per example and generated tokens/s. An example is one
input: rows that share it are its references, and its text fields are scored against all
of them (`llmops.evaluate.metrics.group`); the loss is over every row. Beside them, the
classical floor (`llmops.evaluate.classical`: TF-IDF + logistic regression per label
field, nearest training answer per text field, fitted on the training split only) is
scored on the same examples, and so is the majority class (each label field's most
frequent training label, always). metrics/eval.json holds `base`, `tuned`, `classical`
and, with label fields, `majority`; --examples gets the fine-tuned model's per-example
record that the gates and the report pair with a baseline's
(`llmops.evaluate.predictions`). The figures, and the text scorers' signatures as tags,
are logged to the MLflow run that trained the adapter (its id is in
<adapter>/training.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from contextlib import nullcontext
from pathlib import Path

import torch

from llmops.config import atomic, tracking
from llmops.config.params import Params, ParamsError, load_params
from llmops.config.prompts import PromptError
from llmops.config.task import Field, Task
from llmops.evaluate import classical
from llmops.evaluate.metrics import (
    Texts,
    check_gates,
    confusion,
    group,
    rates,
    references,
    score_example,
    signatures,
    summarize,
)
from llmops.evaluate.predictions import (
    ModelAnswer,
    Prediction,
    example_rows,
    write_examples,
    write_predictions,
)
from llmops.model.batching import collate
from llmops.model.inference import Answer, TaskModel
from llmops.model.lora import AnswerLoss
from llmops.model.models import ModelError, set_threads
from llmops.model.tokenised import DataError, check_rows, encode, read_split
from llmops.report.charts import pyplot, save

log = logging.getLogger(__name__)
MODELS = ("base", "tuned")


def score(
    model: TaskModel, rows: list[dict], params: Params, examples: list[dict], texts: list[Texts]
) -> tuple[dict, list[Answer]]:
    """Metrics and answers of one model: it answers each example (the first row of each
    input, `group`), scored against its references `texts`; the loss is over every row."""
    batch = params.eval.batch_size
    answers, seconds = model.timed_answer(examples, params.decoding, batch)
    metrics = summarize(model.task, [a.parsed for a in answers], examples, texts)
    loss = test_loss(model, rows, batch)
    generated = sum(a.new_tokens for a in answers)
    metrics |= {
        "test_loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "latency_ms": 1000 * seconds / len(examples),
        "generated_tokens_per_s": generated / seconds,
    }
    return {k: round(v, 6) for k, v in metrics.items()}, answers


@torch.no_grad()
def test_loss(model: TaskModel, rows: list[dict], batch_size: int) -> float:
    """Mean answer-token loss on the reference answers (as in training)."""
    examples = [
        encode(model.tokenizer, p, model.task.answer_text(r))
        for p, r in zip(model.prompts(rows), rows, strict=True)
    ]
    examples.sort(key=lambda e: len(e.input_ids))
    loss_fn, total, count = AnswerLoss(model.model), 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], model.tokenizer.pad_token_id)
        with model.device.autocast:
            loss, n = loss_fn(**{k: v.to(model.device.device) for k, v in batch.items()})
        total, count = total + float(loss), count + int(n)
    return total / count


def evaluate(params: Params, data: Path, base: Path, adapter: Path) -> tuple[dict, list]:
    """Metrics per model and one prediction record per test example."""
    task = Task.from_params(params.task)
    check_gates(task, params.gate)  # a gate naming an unknown metric fails before any work
    path = data / "test.jsonl"
    rows = read_split(path)
    check_rows(path, rows, task)
    model = TaskModel.load(base, adapter, task, trust_remote_code=params.base.trust_remote_code)
    examples, texts = group(task, rows)
    results, answers = {}, {}
    for name in MODELS:
        # The base model is the same loaded weights with the adapter switched off.
        switch = model.model.disable_adapter() if name == "base" else nullcontext()
        with switch:
            results[name], answers[name] = score(model, rows, params, examples, texts)
        log.info("%s: %s", name, json.dumps(results[name]))
    results["classical"], always = classical_floor(params, task, data, examples, texts)
    if always:
        results["majority"] = always
    records = [
        prediction(task, row, {m: answers[m][i] for m in MODELS}, texts[i])
        for i, row in enumerate(examples)
    ]
    return results, records


def classical_floor(
    params: Params, task: Task, data: Path, test: list[dict], texts: list[Texts]
) -> tuple[dict, dict]:
    """The classical models' metrics on the test examples, and the majority class's (empty
    without label fields), both from the training split only."""
    path = data / "train.jsonl"
    train = read_split(path)
    check_rows(path, train, task)
    models = classical.fit(train, task, params.eval.classical)
    metrics = classical.score(models, test, task, texts)
    always = classical.majority_score(train, test, task) if task.labels else {}
    log.info("classical: %s; majority class: %s", json.dumps(metrics), json.dumps(always))
    return metrics, always


def prediction(
    task: Task, row: dict, answers: dict[str, Answer], texts: Texts | None = None
) -> Prediction:
    """One example: inputs, reference (and every reference of its text fields), and per
    model the output, parsed fields and scores."""
    scored = {
        name: ModelAnswer(
            output=a.text,
            parsed=a.parsed.fields,
            valid=a.parsed.valid,
            error=a.parsed.error,
            scores={k: round(v, 4) for k, v in score_example(task, a.parsed, row, texts).items()},
            new_tokens=a.new_tokens,
        )
        for name, a in answers.items()
    }
    inputs = {f.name: row[f.name] for f in task.inputs}
    refs = references(task, row, texts)
    further = {name: values for name, values in refs.items() if len(values) > 1}
    return Prediction(row["id"], inputs, task.answer(row), **scored, references=further)


def write_plots(task: Task, results: dict, records: list[Prediction], folder: Path) -> None:
    """CSV for `dvc plots` and PNG copies: a confusion per label field (tuned), metric bars."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "confusion").mkdir(exist_ok=True)
    for field in task.labels:
        plot_confusion(field, records, folder)
    shown = rates(task)
    for name in MODELS:  # the classical floor has no JSON or text metrics to draw
        rows = "".join(f"{m},{results[name][m]:.4f}\n" for m in shown)
        (folder / f"metrics_{name}.csv").write_text("metric,value\n" + rows, encoding="utf-8")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * len(shown)))
    ys = range(len(shown))
    for k, name in enumerate(MODELS):
        ax.barh([y + 0.4 * k for y in ys], [results[name][m] for m in shown], 0.4, label=name)
    ax.set_yticks([y + 0.2 for y in ys], shown)
    ax.set_xlim(0, 1)
    ax.legend()
    save(plt, fig, folder / "metrics.png")


def plot_confusion(field: Field, records: list[Prediction], folder: Path) -> None:
    """reports/eval/confusion/<field>.csv (for dvc plots) and <field>.png beside it."""
    truth = [r.reference[field.name] for r in records]
    predicted = [r.tuned.parsed.get(field.name) for r in records]
    labels = list(field.values)
    with (folder / "confusion" / f"{field.name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")  # labels may hold commas or quotes
        writer.writerow(["actual", "predicted"])
        for t, p in zip(truth, predicted, strict=True):
            writer.writerow([t, p if p in labels else "(invalid)"])
    columns = [*labels, "(invalid)"]
    grid = [[0] * len(columns) for _ in labels]
    for actual, answer, count in confusion(truth, predicted, labels):
        grid[labels.index(actual)][columns.index(answer)] = count
    plt = pyplot()
    side = min(16.0, 4 + 0.25 * len(columns))
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    ax.imshow(grid, cmap="Blues")
    small = {"fontsize": 6} if len(labels) > 20 else {}
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", **small)
    ax.set_yticks(range(len(labels)), labels, **small)
    if len(labels) <= 20:  # numbers in the cells while they stay readable
        for i, row in enumerate(grid):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, count, ha="center", va="center", fontsize=8)
    ax.set_xlabel(f"predicted {field.name} (fine-tuned)")
    ax.set_ylabel(f"actual {field.name}")
    save(plt, fig, folder / "confusion" / f"{field.name}.png")


def log_to_training_run(results: dict, adapter: Path, texts: bool | None = None) -> str:
    """Add the metrics to the MLflow run that trained `adapter`; returns its id. `texts`
    (the task has text fields: whether some input has several references) adds the text
    scorers' signatures as tags."""
    import mlflow

    info = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    figures = {f"test/{m}/{k}": float(v) for m, r in results.items() for k, v in r.items()}
    # A store without the training run (trained elsewhere) gets a new run, tagged with it.
    tags = {"eval_commit": tracking.git_commit()}
    if texts is not None:
        tags |= {f"scorer_{name}": sign for name, sign in signatures(texts).items()}
    with tracking.start("eval", {}, tags, info["run_id"]) as run:
        mlflow.log_metrics(figures)
        return run.info.run_id


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "adapter", "metrics", "examples", "plots", "predictions"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    set_threads()
    try:
        params = load_params(args.params)
        results, records = evaluate(params, args.data, args.base, args.adapter)
    except (ParamsError, DataError, ModelError, PromptError, FileNotFoundError) as err:
        raise SystemExit(f"eval: {err}") from None
    task = Task.from_params(params.task)
    with atomic.Outputs() as out:  # renamed into place together once all are written
        write_predictions(out.file(args.predictions), records)
        write_examples(out.file(args.examples), example_rows(task, records))
        write_plots(task, results, records, out.folder(args.plots))
        out.file(args.metrics).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    several = any(r.references for r in records) if task.texts else None
    run_id = log_to_training_run(results, args.adapter, several)
    shown = rates(task)
    summary = ", ".join(f"{m} {results['tuned'][m]:.3f} vs {results['base'][m]:.3f}" for m in shown)
    log.info("tuned vs base: %s; MLflow run %s", summary, run_id)


if __name__ == "__main__":
    main()
