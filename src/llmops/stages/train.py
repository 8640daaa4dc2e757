"""Fine-tune the base model with LoRA on the training split; write the adapter and its curves.

Run: python -m llmops.stages.train --params params.yaml --data data/prepared \
        --base models/base --prompt prompts/<task>.jinja --out models/adapter \
        --checkpoints models/checkpoints --metrics metrics/train.json --plots reports/train
Several processes (DDP, same code): accelerate launch --num_processes 2 -m llmops.stages.train ...

Every input is checked before the first step (splits present and non-empty, weights in
safetensors, LoRA targets that exist, examples that fit train.max_length). Batches are
length-grouped (llmops.model.batching), the loss covers answer tokens only (llmops.model.lora), and
the loop is llmops.model.trainer.
A checkpoint is written every train.checkpoint_every steps; run the same command after a
crash or `kill -9` and it resumes from the last one, reaching the same adapter as an
uninterrupted run: batch order and dropout are functions of (seed, step, process), not of
how often the run was restarted. The run is tracked in MLflow (llmops.config.tracking), and its
id is written to <out>/training.json for the eval stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from llmops.config import atomic, tracking
from llmops.config.params import Params, ParamsError, load_params
from llmops.config.prompts import PromptError, load_template
from llmops.config.task import Task
from llmops.model import checkpoint, lora
from llmops.model.models import (
    ModelError,
    check_targets,
    count_parameters,
    load_base,
    load_tokenizer,
    read_card,
    set_threads,
)
from llmops.model.tokenised import DataError, encode_split, read_split
from llmops.model.trainer import OnMetrics, Result, Setup, check_batches, fit, stamp_for

log = logging.getLogger(__name__)


def prepare(params: Params, data: Path, base: Path, prompt: Path) -> Setup:
    """Load and check every input; raise naming the first problem found."""
    cfg = params.train
    task = Task.from_params(params.task)
    template = load_template(prompt, task.variables())
    model = load_base(base, params.base.trust_remote_code)  # fails first if no weights
    tokenizer = load_tokenizer(base, params.base.trust_remote_code)
    check_targets(model, cfg.lora, base)
    splits = {
        name: encode_split(data / f"{name}.jsonl", tokenizer, template, task, cfg.max_length)
        for name in ("train", "val")
    }
    config = {"train": dataclasses.asdict(cfg), "task": dataclasses.asdict(params.task)}
    stamp = checkpoint.fingerprint(config, [data / "train.jsonl", data / "val.jsonl", base, prompt])
    model = lora.attach(model, cfg.lora, cfg.seed)
    rows = {name: read_split(data / f"{name}.jsonl") for name in ("train", "val")}
    if cfg.label_weights != "none":
        weigh = label_weights(rows["train"], task, cfg.label_weights)
        for name, examples in splits.items():
            splits[name] = [
                dataclasses.replace(e, weight=weigh(r))
                for e, r in zip(examples, rows[name], strict=True)
            ]
    groups = input_groups(rows["train"], task)
    return Setup(tokenizer, model, splits["train"], splits["val"], stamp, groups)


def label_weights(rows: list[dict], task: Task, mode: str) -> Callable[[dict], float]:
    """An example's loss weight from its labels' frequencies in `rows` (the training split).

    Per label field, a label seen n times of N rows among k labels weighs N / (k n)
    ("balanced") or its square root ("sqrt"); an example weighs the mean over its label
    fields, scaled so that the training examples' mean weight is 1. A label training never
    saw (in validation) weighs as the field's rarest. No label field: every example weighs 1.
    """
    fields = task.labels
    if not fields or not rows:
        return lambda row: 1.0
    power = 1.0 if mode == "balanced" else 0.5
    tables = []
    for field in fields:
        counts = Counter(str(r[field.name]) for r in rows)
        each = {v: (len(rows) / (len(counts) * n)) ** power for v, n in counts.items()}
        tables.append((field.name, each, max(each.values())))

    def raw(row: dict) -> float:
        return sum(each.get(str(row[name]), top) for name, each, top in tables) / len(tables)

    scale = len(rows) / sum(raw(r) for r in rows)
    return lambda row: raw(row) * scale


def input_groups(rows: list[dict], task: Task) -> list[int]:
    """Each row's input, numbered in order of first appearance (up to case and whitespace,
    as prep groups an input's references)."""
    numbers: dict[str, int] = {}
    return [numbers.setdefault(task.input_key(r), len(numbers)) for r in rows]


def train(
    params: Params,
    setup: Setup,
    checkpoints: Path,
    accelerator=None,
    on_metrics: OnMetrics | None = None,
    run_id: str = "",
) -> Result:
    """Fine-tune `setup`'s adapter; resumes from the newest matching checkpoint."""
    return fit(setup, params.train, checkpoints, accelerator, on_metrics, run_id)


def save_adapter(setup: Setup, out: Path, prompt: Path, info: dict) -> None:
    """Adapter safetensors + config, the prompt template it was trained with, tokenizer, info."""
    setup.model.save_pretrained(out)
    stable_config(out / "adapter_config.json")
    setup.tokenizer.save_pretrained(out)
    shutil.copy2(prompt, out / "prompt.jinja")
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def stable_config(path: Path) -> None:
    """peft writes `target_modules` from a set, in an order that changes from one process to
    the next (string hashing is randomised): sorted, the same run writes the same bytes."""
    config = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_curves(result: Result, folder: Path) -> None:
    """Loss curves as CSV files that `dvc plots show/diff` draw (x: step, y: loss)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, curve in (("train_loss", result.train_curve), ("val_loss", result.val_curve)):
        rows = "".join(f"{int(s)},{loss:.5f}\n" for s, loss in curve)
        (folder / f"{name}.csv").write_text("step,loss\n" + rows, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "prompt", "out", "checkpoints", "metrics", "plots"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from accelerate import Accelerator

    args = parse_args(argv)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    logging.basicConfig(
        level=logging.INFO if acc.is_main_process else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    set_threads(acc.num_processes if acc.device.type == "cpu" else 1)
    try:
        params = load_params(args.params)
        setup = prepare(params, args.data, args.base, args.prompt)
        check_batches(len(setup.train), params.train, acc.num_processes)
    except (ParamsError, DataError, ModelError, PromptError, OSError) as err:
        raise SystemExit(f"train: {err}") from None
    trainable, total = count_parameters(setup.model)
    log.info(
        "%d train / %d val examples; adapter %s of %s parameters (%.2f%%)",
        len(setup.train),
        len(setup.val),
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / total,
    )
    found = checkpoint.latest(args.checkpoints, stamp_for(setup, acc.num_processes))
    run_id = found.state()["run_id"] if found else None
    card = read_card(args.base)
    tags = {
        "git_commit": tracking.git_commit(),
        "data_md5": tracking.locked_hash(Path("dvc.lock"), "prep", args.data.as_posix()),
        "base_model": str(card.get("source", args.base)),
        "stage": "train",
    }
    if not acc.is_main_process:
        train(params, setup, args.checkpoints, acc)
        return
    flat = tracking.flatten({"task": params.task, "base": params.base, "train": params.train})
    with tracking.start("train", flat, tags, run_id) as run:
        import mlflow

        def log_metrics(figures: dict[str, float], step: int) -> None:
            mlflow.log_metrics(figures, step=step)

        result = train(params, setup, args.checkpoints, acc, log_metrics, run.info.run_id)
        info = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "tracking_uri": tracking.safe_uri(tracking.tracking_uri()),
            "base": card,
            "prompt": args.prompt.as_posix(),
            **tags,
        }
        with atomic.Outputs() as out:  # renamed into place together once all are written
            save_adapter(setup, out.folder(args.out), args.prompt, info)
            write_curves(result, out.folder(args.plots))
            metrics = json.dumps(result.metrics, indent=2) + "\n"
            out.file(args.metrics).write_text(metrics, encoding="utf-8")
        numbers = {k: v for k, v in result.metrics.items() if not isinstance(v, str)}
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in numbers.items()})
        mlflow.set_tag("stopped", result.metrics["stopped"])
        mlflow.log_artifacts(str(args.out), artifact_path="adapter")
    checkpoint.clear(args.checkpoints)
    m = result.metrics
    log.info(
        "done after %s epochs (%s): train loss %.4f, val loss %.4f, %s tokens/s, %.0f s; "
        "run %s -> %s",
        m["epochs"],
        m["stopped"],
        m["train_loss"],
        m["val_loss"],
        f"{m['tokens_per_s']:,.0f}",
        m["train_seconds"],
        run.info.run_id,
        args.out,
    )


if __name__ == "__main__":
    main()
