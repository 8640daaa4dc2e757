"""Fine-tune the base model with LoRA on the training split; write the adapter and its curves.

Run: python -m llmops.stages.train --params params.yaml --data data/prepared \
        --base models/base --prompt prompts/triage.jinja --out models/adapter \
        --checkpoints models/checkpoints --metrics metrics/train.json --plots reports/train
Several processes (DDP, same code): accelerate launch --num_processes 2 -m llmops.stages.train ...

Every input is checked before the first step (splits present and non-empty, weights in
safetensors, LoRA targets that exist, examples that fit train.max_length). Batches are
length-grouped (llmops.batching) and the loss covers answer tokens only (llmops.lora).
A checkpoint is written every train.checkpoint_every steps; run the same command after a
crash or `kill -9` and it resumes from the last one, reaching the same adapter as an
uninterrupted run: batch order and dropout are functions of (seed, step, process), not of
how often the run was restarted. The run is tracked in MLflow (llmops.tracking), and its
id is written to <out>/training.json for the eval stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from llmops import checkpoint, lora, tracking
from llmops.batching import collate, padding_share, plan_batches
from llmops.examples import DataError, Example, encode_split
from llmops.models import (
    ModelError,
    check_targets,
    count_parameters,
    load_base,
    load_tokenizer,
    pick_device,
    read_card,
    weight_files,
)
from llmops.params import Params, ParamsError, TrainParams, load_params
from llmops.prompts import PromptError, load_template

log = logging.getLogger(__name__)
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


@dataclass
class Setup:
    """Everything checked and loaded before the first step."""

    tokenizer: object
    model: torch.nn.Module  # peft model (base + fresh adapter)
    train: list[Example]
    val: list[Example]
    stamp: str  # checkpoint fingerprint


@dataclass
class Result:
    """Figures of a finished run."""

    metrics: dict[str, float]
    train_curve: list[list[float]]  # [step, loss]
    val_curve: list[list[float]]


def prepare(params: Params, data: Path, base: Path, prompt: Path) -> Setup:
    """Load and check every input; raise naming the first problem found."""
    cfg = params.train
    template = load_template(prompt)
    weight_files(base)
    tokenizer = load_tokenizer(base, params.base.trust_remote_code)
    model = load_base(base, params.base.trust_remote_code)
    check_targets(model, cfg.lora.target_modules, base)
    splits = {
        name: encode_split(data / f"{name}.jsonl", tokenizer, template, params.task, cfg.max_length)
        for name in ("train", "val")
    }
    config = {"train": dataclasses.asdict(cfg), "task": dataclasses.asdict(params.task)}
    stamp = checkpoint.fingerprint(config, [data / "train.jsonl", data / "val.jsonl", base, prompt])
    model = lora.attach(model, cfg.lora, cfg.seed)
    return Setup(tokenizer, model, splits["train"], splits["val"], stamp)


def steps_per_epoch(batches: int, world: int, accum: int) -> int:
    return max(1, batches // (world * accum))


def fit(
    setup: Setup,
    cfg: TrainParams,
    checkpoints: Path,
    accelerator=None,
    on_metrics: Callable[[dict[str, float], int], None] | None = None,
    run_id: str = "",
) -> Result:
    """The training loop; resumes from the newest matching checkpoint in `checkpoints`."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    dev = pick_device(cfg.precision, acc.device)
    world, rank = acc.num_processes, acc.process_index
    lengths = [len(e.input_ids) for e in setup.train]
    per_epoch = steps_per_epoch(
        len(plan_batches(lengths, cfg.batch_size, cfg.seed, 0)), world, cfg.grad_accum
    )
    total = cfg.max_steps or cfg.epochs * per_epoch
    module = acc.prepare(lora.AnswerLoss(setup.model))
    weights = lora.trainable(setup.model)
    optimizer = torch.optim.AdamW(
        weights.values(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    schedule = get_scheduler(SCHEDULES[cfg.schedule], optimizer, cfg.warmup_steps, total)
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "train": [], "val": [], "recent": []}
    state["run_id"] = run_id
    found = checkpoint.latest(checkpoints, setup.stamp)
    if found:
        lora.load_trainable(setup.model, found.weights())
        saved = found.state()
        optimizer.load_state_dict(saved.pop("optimizer"))
        schedule.load_state_dict(saved.pop("scheduler"))
        state |= saved
        log.info("resuming from %s (step %d of %d)", found.path, found.step, total)
    elif acc.is_main_process:
        checkpoint.clear(checkpoints)
    acc.wait_for_everyone()
    plans: dict[int, list[list[int]]] = {}
    bar = tqdm(total=total, initial=state["step"], desc="train", disable=not acc.is_main_process)
    window, started, tokens_here = [], time.perf_counter(), 0
    while state["step"] < total:
        step = state["step"]
        epoch, index = divmod(step, per_epoch)
        plan = plans.setdefault(epoch, plan_batches(lengths, cfg.batch_size, cfg.seed, epoch))
        first = (index * world + rank) * cfg.grad_accum
        mine = plan[first : first + cfg.grad_accum]
        torch.manual_seed(hash((cfg.seed, step, rank)) & 0xFFFF_FFFF)  # dropout masks
        module.train()
        loss_sum, step_tokens = 0.0, 0
        for i, batch_ids in enumerate(mine):
            batch = collate([setup.train[j] for j in batch_ids], setup.tokenizer.pad_token_id)
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            sync = acc.no_sync(module) if i < len(mine) - 1 else nullcontext()
            with sync, dev.autocast:
                total_loss, count = module(**batch)
                loss = total_loss / count.clamp(min=1) / len(mine)
                acc.backward(loss)
            loss_sum += loss.item()
            step_tokens += int(batch["attention_mask"].sum())
        acc.clip_grad_norm_(weights.values(), cfg.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] = step = step + 1
        window.append(loss_sum)
        state["recent"] = [*state["recent"], loss_sum][-max(cfg.log_every, total // 20) :]
        tokens_here += step_tokens
        bar.update(1)
        if step % cfg.log_every == 0 or step == total:
            seen = int(acc.reduce(torch.tensor(tokens_here, device=acc.device), "sum"))
            elapsed = time.perf_counter() - started
            loss_avg = float(
                acc.reduce(torch.tensor(sum(window) / len(window), device=acc.device), "mean")
            )
            state["train"].append([step, loss_avg])
            figures = {
                "train_loss": loss_avg,
                "tokens_per_s": seen / elapsed,
                "lr": schedule.get_last_lr()[0],
            }
            bar.set_postfix(loss=f"{loss_avg:.3f}", tok_s=f"{seen / elapsed:,.0f}")
            _emit(on_metrics, figures, step, acc)
            window = []
        if step % cfg.eval_every == 0 or step == total:
            val = validation_loss(module, setup, cfg, acc, dev)
            state["val"].append([step, val])
            _emit(on_metrics, {"val_loss": val}, step, acc)
        if step % cfg.checkpoint_every == 0 and step < total:
            _save(checkpoints, setup, state, optimizer, schedule, acc, started, tokens_here)
    bar.close()
    checksums = ranks_agree(weights, acc)
    seen = int(acc.reduce(torch.tensor(tokens_here, device=acc.device), "sum"))
    seconds = state["seconds"] + time.perf_counter() - started
    tokens = state["tokens"] + seen
    trainable, params_total = count_parameters(setup.model)
    # Mean over the last 5% of steps (at least log_every steps): one batch is too noisy.
    recent = sum(state["recent"]) / len(state["recent"])
    metrics = {
        "train_loss": float(acc.reduce(torch.tensor(recent, device=acc.device), "mean")),
        "val_loss": state["val"][-1][1],
        "steps": total,
        "epochs": round(total / per_epoch, 3),
        "train_tokens": tokens,
        "train_seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "padding_share": round(
            padding_share(plan_batches(lengths, cfg.batch_size, cfg.seed, 0), lengths), 4
        ),
        "trainable_params": trainable,
        "total_params": params_total,
        "processes": world,
    }
    if world > 1:
        log.info("adapter checksum per process: %s (all equal)", checksums)
    return Result(metrics, state["train"], state["val"])


def ranks_agree(weights: dict[str, torch.Tensor], acc) -> list[float]:
    """Checksums of the adapter on every process; raises if DDP let them drift apart."""
    flat = torch.cat([w.detach().double().flatten() for w in weights.values()])
    ramp = torch.linspace(1, 2, len(flat), dtype=torch.float64, device=flat.device)
    mine = torch.stack([flat.sum(), (flat * ramp).sum(), flat.square().sum()])
    every = acc.gather(mine.unsqueeze(0)).cpu()
    if not torch.equal(every, every[:1].expand_as(every)):
        raise RuntimeError(f"processes disagree on the adapter weights: {every.tolist()}")
    return [round(float(row[1]), 9) for row in every]


def _emit(on_metrics, figures: dict, step: int, acc) -> None:
    if on_metrics and acc.is_main_process:
        on_metrics(figures, step)


def _save(folder, setup, state, optimizer, schedule, acc, started, tokens_here) -> None:
    seen = int(acc.reduce(torch.tensor(tokens_here, device=acc.device), "sum"))
    if acc.is_main_process:
        saved = dict(state)
        saved["seconds"] = state["seconds"] + time.perf_counter() - started
        saved["tokens"] = state["tokens"] + seen
        saved |= {"optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict()}
        checkpoint.save(folder, state["step"], lora.trainable(setup.model), saved, setup.stamp)
    acc.wait_for_everyone()


@torch.no_grad()
def validation_loss(module, setup: Setup, cfg: TrainParams, acc, dev) -> float:
    """Mean answer-token loss over the validation split (sharded across processes)."""
    module.eval()
    order = sorted(range(len(setup.val)), key=lambda i: len(setup.val[i].input_ids))
    size = cfg.batch_size * 2
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    totals = torch.zeros(2, device=acc.device)
    for ids in batches[acc.process_index :: acc.num_processes]:
        batch = collate([setup.val[i] for i in ids], setup.tokenizer.pad_token_id)
        with dev.autocast:
            loss, count = module(**{k: v.to(acc.device) for k, v in batch.items()})
        totals += torch.stack([loss.float(), count.float()])
    totals = acc.reduce(totals, "sum")
    return float(totals[0] / totals[1])


def save_adapter(setup: Setup, out: Path, prompt: Path, info: dict) -> None:
    """Adapter safetensors + config, the prompt template it was trained with, tokenizer, info."""
    if out.exists():
        shutil.rmtree(out)
    setup.model.save_pretrained(out)
    setup.tokenizer.save_pretrained(out)
    shutil.copy2(prompt, out / "prompt.jinja")
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


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
    try:
        params = load_params(args.params)
        setup = prepare(params, args.data, args.base, args.prompt)
    except (ParamsError, DataError, ModelError, PromptError) as err:
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
    found = checkpoint.latest(args.checkpoints, setup.stamp)
    run_id = found.state()["run_id"] if found else None
    card = read_card(args.base)
    tags = {
        "git_commit": tracking.git_commit(),
        "data_md5": tracking.locked_hash(Path("dvc.lock"), "prep", args.data.as_posix()),
        "base_model": str(card.get("source", args.base)),
        "stage": "train",
    }
    if not acc.is_main_process:
        fit(setup, params.train, args.checkpoints, acc)
        return
    flat = tracking.flatten({"task": params.task, "base": params.base, "train": params.train})
    with tracking.start("train", flat, tags, run_id) as run:
        import mlflow

        def log_metrics(figures: dict[str, float], step: int) -> None:
            mlflow.log_metrics(figures, step=step)

        result = fit(setup, params.train, args.checkpoints, acc, log_metrics, run.info.run_id)
        info = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "tracking_uri": tracking.safe_uri(tracking.tracking_uri()),
            "base": card,
            "prompt": args.prompt.as_posix(),
            **tags,
        }
        save_adapter(setup, args.out, args.prompt, info)
        write_curves(result, args.plots)
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        args.metrics.write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in result.metrics.items()})
        mlflow.log_artifacts(str(args.out), artifact_path="adapter")
    checkpoint.clear(args.checkpoints)
    m = result.metrics
    log.info(
        "done: train loss %.4f, val loss %.4f, %s tokens/s, %.0f s; run %s -> %s",
        m["train_loss"],
        m["val_loss"],
        f"{m['tokens_per_s']:,.0f}",
        m["train_seconds"],
        run.info.run_id,
        args.out,
    )


if __name__ == "__main__":
    main()
