"""Evaluate the base model and the fine-tuned one on the test split; write metrics and plots.

Run: python -m llmops.stages.eval --params params.yaml --data data/prepared \
        --base models/base --adapter models/adapter --metrics metrics/eval.json \
        --plots reports/eval --predictions data/eval/predictions.jsonl

Both models (one load: the adapter switched off is the base model) answer every test
message through `llmops.inference` (the path the service uses) with the adapter's prompt
template, and are scored by `llmops.metrics`. Also
measured: the answer-token loss on the test split (and its perplexity), generation time
per example and generated tokens/s. The figures are logged to the MLflow run that trained
the adapter (its id is in <adapter>/training.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from contextlib import nullcontext
from pathlib import Path

import torch

from llmops import tracking
from llmops.batching import collate
from llmops.charts import pyplot, save
from llmops.examples import DataError, answer_text, encode, read_split
from llmops.inference import Answer, TriageModel
from llmops.lora import AnswerLoss
from llmops.metrics import RATES, confusion, score_example, summarize
from llmops.models import ModelError
from llmops.params import EvalParams, Params, ParamsError, load_params
from llmops.prompts import PromptError

log = logging.getLogger(__name__)
MODELS = ("base", "tuned")


def score(model: TriageModel, rows: list[dict], decoding: EvalParams, categories) -> tuple:
    """Metrics and answers of one model on `rows`."""
    answers, seconds = model.timed_answer([r["message"] for r in rows], decoding)
    metrics = summarize([a.parsed for a in answers], rows, categories)
    loss = test_loss(model, rows, decoding.batch_size)
    generated = sum(a.new_tokens for a in answers)
    metrics |= {
        "test_loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "latency_ms": 1000 * seconds / len(rows),
        "generated_tokens_per_s": generated / seconds,
    }
    return {k: round(v, 6) for k, v in metrics.items()}, answers


@torch.no_grad()
def test_loss(model: TriageModel, rows: list[dict], batch_size: int) -> float:
    """Mean answer-token loss on the reference answers (as in training)."""
    examples = [
        encode(model.tokenizer, p, answer_text(r))
        for p, r in zip(model.prompts([r["message"] for r in rows]), rows, strict=True)
    ]
    examples.sort(key=lambda e: len(e.input_ids))
    loss_fn, total, count = AnswerLoss(model.model), 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], model.tokenizer.pad_token_id)
        with model.device.autocast:
            loss, n = loss_fn(**{k: v.to(model.device.device) for k, v in batch.items()})
        total, count = total + float(loss), count + int(n)
    return total / count


def evaluate(params: Params, data: Path, base: Path, adapter: Path) -> tuple[dict, list[dict]]:
    """Metrics per model and one prediction record per test example."""
    rows = read_split(data / "test.jsonl")
    model = TriageModel.load(
        base, adapter, params.task, trust_remote_code=params.base.trust_remote_code
    )
    results, answers = {}, {}
    for name in MODELS:
        # The base model is the same loaded weights with the adapter switched off.
        switch = model.model.disable_adapter() if name == "base" else nullcontext()
        with switch:
            results[name], answers[name] = score(model, rows, params.eval, params.task.categories)
        log.info("%s: %s", name, json.dumps(results[name]))
    records = [prediction(row, {m: answers[m][i] for m in MODELS}) for i, row in enumerate(rows)]
    return results, records


def prediction(row: dict, answers: dict[str, Answer]) -> dict:
    """One example: input, reference, and per model the output, parsed fields and scores."""
    out = {
        "id": row["id"],
        "message": row["message"],
        "reference": {k: row[k] for k in ("category", "priority", "reply")},
    }
    for name, answer in answers.items():
        parsed = answer.parsed
        out[name] = {
            "output": answer.text,
            "parsed": {
                "category": parsed.category,
                "priority": parsed.priority,
                "reply": parsed.reply,
                "error": parsed.error,
            },
            "scores": {k: round(v, 4) for k, v in score_example(parsed, row).items()},
        }
    return out


def write_plots(results: dict, records: list[dict], categories, folder: Path) -> None:
    """CSV for `dvc plots` and PNG copies: category confusion (tuned), metric bars."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["actual,predicted"]
    for r in records:
        predicted = r["tuned"]["parsed"]["category"]
        lines.append(
            f"{r['reference']['category']},{predicted if predicted in categories else '(invalid)'}"
        )
    (folder / "confusion.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in MODELS:
        rows = "".join(f"{m},{results[name][m]:.4f}\n" for m in RATES)
        (folder / f"metrics_{name}.csv").write_text("metric,value\n" + rows, encoding="utf-8")
    plt = pyplot()
    truth = [r["reference"]["category"] for r in records]
    cells = confusion(truth, [r["tuned"]["parsed"]["category"] for r in records], categories)
    columns = [*categories, "(invalid)"]
    grid = [[0] * len(columns) for _ in categories]
    for actual, predicted, count in cells:
        grid[categories.index(actual)][columns.index(predicted)] = count
    fig, ax = plt.subplots(figsize=(8, 6.5))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right")
    ax.set_yticks(range(len(categories)), categories)
    for i, row in enumerate(grid):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, count, ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted (tuned)")
    ax.set_ylabel("actual")
    save(plt, fig, folder / "confusion.png")
    fig, ax = plt.subplots(figsize=(8, 4))
    ys = range(len(RATES))
    for k, name in enumerate(MODELS):
        ax.barh([y + 0.4 * k for y in ys], [results[name][m] for m in RATES], 0.4, label=name)
    ax.set_yticks([y + 0.2 for y in ys], RATES)
    ax.set_xlim(0, 1)
    ax.legend()
    save(plt, fig, folder / "metrics.png")


def log_to_training_run(results: dict, adapter: Path) -> str:
    """Add the metrics to the MLflow run that trained `adapter`; returns its id."""
    import mlflow

    info = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    figures = {f"test/{m}/{k}": float(v) for m, r in results.items() for k, v in r.items()}
    # A store without the training run (trained elsewhere) gets a new run, tagged with it.
    with tracking.start("eval", {}, {"eval_commit": tracking.git_commit()}, info["run_id"]) as run:
        mlflow.log_metrics(figures)
        return run.info.run_id


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "adapter", "metrics", "plots", "predictions"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)
        results, records = evaluate(params, args.data, args.base, args.adapter)
    except (ParamsError, DataError, ModelError, PromptError, FileNotFoundError) as err:
        raise SystemExit(f"eval: {err}") from None
    args.predictions.parent.mkdir(parents=True, exist_ok=True)
    with args.predictions.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_plots(results, records, list(params.task.categories), args.plots)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    run_id = log_to_training_run(results, args.adapter)
    t, b = results["tuned"], results["base"]
    log.info(
        "tuned vs base: json_valid %.3f vs %.3f, category %.3f vs %.3f, priority %.3f vs "
        "%.3f, reply ROUGE-L %.3f vs %.3f; MLflow run %s",
        t["json_valid"],
        b["json_valid"],
        t["category_accuracy"],
        b["category_accuracy"],
        t["priority_accuracy"],
        b["priority_accuracy"],
        t["reply_rouge_l"],
        b["reply_rouge_l"],
        run_id,
    )


if __name__ == "__main__":
    main()
