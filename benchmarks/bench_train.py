"""Training throughput of the train stage against the transformers Trainer with peft.

Run: make bench-train
     (python -m benchmarks.bench_train --params params.yaml --data data/prepared \
        --base models/base --out benchmarks/results/train.json)
The prompt template is the task's (task.yaml task.prompt).

Both sides train the same LoRA (params.yaml train.lora) on the same base model and the
same tokenized training examples, with the same batch size, optimizer steps, learning rate
and precision (and no token dropout: `train.token_dropout` is ours alone), in this one
process, alternating baseline and ours over --repeats rounds. The baseline is the Trainer
as its users set it up for this job: peft's get_peft_model, labels on the answer tokens
only (-100 on the prompt), batches grouped by length
(`train_sampling_strategy="group_by_length"`, transformers' LengthGroupedSampler) and
padded by DataCollatorForSeq2Seq; the model computes logits at every position. Ours is
llmops.model.trainer.fit (length-grouped batches; vocabulary projection only where the loss
needs it).

Throughput counts non-padding tokens per wall-clock second of the training call. FLOP/s
are the matmul FLOPs torch's FlopCounterMode counts for forward + backward of the batches
each side ran, per second, against the best rate of a torch matmul shaped like the
model's MLP ([tokens per batch, hidden] x [hidden, intermediate]) on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from llmops.config.params import load_params
from llmops.model import trainer
from llmops.model.batching import collate, plan_batches
from llmops.model.lora import AnswerLoss
from llmops.stages import train as stage


def matmul_peak(rows: int, hidden: int, inner: int, rounds: int = 20) -> float:
    """Best FLOP/s of a fp32 [rows, hidden] x [hidden, inner] matmul."""
    a, b = torch.randn(rows, hidden), torch.randn(hidden, inner)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * rows * hidden * inner / (time.perf_counter() - start))
    return best


def step_flops(loss_fn, batch: dict) -> int:
    """Matmul FLOPs of one forward + backward."""
    with FlopCounterMode(display=False) as counter:
        loss_fn(batch).backward()
    return counter.get_total_flops()


def run_ours(setup: trainer.Setup, cfg, steps: int) -> dict:
    # Token dropout off: the Trainer has no such thing, and it would shorten our sequences.
    cfg = dataclasses.replace(
        cfg,
        max_steps=steps,
        eval_every=10**9,
        checkpoint_every=10**9,
        log_every=steps,
        token_dropout=0.0,
        token_budget=None,
        patience=None,
        label_weights="none",  # the Trainer's loss is unweighted
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = trainer.fit(setup, cfg, Path(folder))
        seconds = time.perf_counter() - start
    lengths = [len(e.input_ids) for e in setup.train]
    batches = plan_batches(lengths, cfg.batch_size, cfg.seed, 0)[:steps]
    module = AnswerLoss(setup.model)

    def loss(batch):
        total, count = module(**batch)
        return total / count

    sample = batches[:: max(1, len(batches) // 8)]
    per_token = sum(
        step_flops(loss, collate([setup.train[i] for i in b], setup.tokenizer.pad_token_id))
        for b in sample
    ) / sum(lengths[i] for b in sample for i in b)
    tokens = result.metrics["train_tokens"]
    return {"tokens": tokens, "seconds": seconds, "flops": per_token * tokens,
            "padding_share": result.metrics["padding_share"]}  # fmt: skip


def run_trainer(setup: trainer.Setup, cfg, steps: int, seed: int) -> dict:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    rows = [
        {"input_ids": list(e.input_ids), "attention_mask": [1] * len(e.input_ids),
         "labels": list(e.labels)}
        for e in setup.train
    ]  # fmt: skip
    padder = DataCollatorForSeq2Seq(setup.tokenizer, padding=True)
    seen = {"tokens": 0, "positions": 0, "batches": []}

    def collator(features):
        batch = padder(features)
        seen["tokens"] += int(batch["attention_mask"].sum())
        seen["positions"] += batch["attention_mask"].numel()
        if len(seen["batches"]) < 8:
            seen["batches"].append(batch)
        return batch

    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(
            output_dir=folder, per_device_train_batch_size=cfg.batch_size, max_steps=steps,
            learning_rate=cfg.learning_rate, lr_scheduler_type=trainer.SCHEDULES[cfg.schedule],
            warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            gradient_accumulation_steps=cfg.grad_accum, logging_steps=10**9, save_strategy="no",
            report_to="none", use_cpu=not torch.cuda.is_available(), seed=seed,
            dataloader_num_workers=0, disable_tqdm=True,
            train_sampling_strategy="group_by_length",  # batches of similar lengths
        )  # fmt: skip
        baseline = Trainer(model=setup.model, args=args, train_dataset=rows, data_collator=collator)
        start = time.perf_counter()
        baseline.train()
        seconds = time.perf_counter() - start

    def loss(batch):
        return setup.model(**batch).loss

    per_token = sum(step_flops(loss, b) for b in seen["batches"]) / sum(
        int(b["attention_mask"].sum()) for b in seen["batches"]
    )
    padding = 1 - seen["tokens"] / seen["positions"]
    return {"tokens": seen["tokens"], "seconds": seconds, "flops": per_token * seen["tokens"],
            "padding_share": padding}  # fmt: skip


def fresh_setup(params, args) -> trainer.Setup:
    setup = stage.prepare(params, args.data, args.base, Path(params.task.prompt))
    setup.val = setup.val[:8]  # ours ends with one validation pass; keep it negligible
    return setup


def bench(args: argparse.Namespace) -> dict:
    params = load_params(args.params)
    torch.set_num_threads(torch.get_num_threads())
    rounds: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for r in range(args.repeats):
        for side in ("baseline", "ours") if r % 2 == 0 else ("ours", "baseline"):
            setup = fresh_setup(params, args)  # fresh adapter each time: same starting point
            random.seed(r)
            if side == "ours":
                rounds[side].append(run_ours(setup, params.train, args.steps))
            else:
                rounds[side].append(run_trainer(setup, params.train, args.steps, r))
            tps = rounds[side][-1]["tokens"] / rounds[side][-1]["seconds"]
            print(f"round {r + 1} {side:8s} {tps:10,.0f} tokens/s", flush=True)
    setup = fresh_setup(params, args)
    config = setup.model.get_base_model().config
    rows = params.train.batch_size * round(statistics.mean(len(e.input_ids) for e in setup.train))
    peak = matmul_peak(rows, config.hidden_size, config.intermediate_size)
    out = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "steps": args.steps,
        "repeats": args.repeats,
        "matmul_peak_flops": peak,
    }
    for side, runs in rounds.items():
        tokens = sum(x["tokens"] for x in runs)
        seconds = sum(x["seconds"] for x in runs)
        flops = sum(x["flops"] for x in runs) / seconds
        padding = statistics.mean(x["padding_share"] for x in runs)
        out[side] = {"tokens_per_s": tokens / seconds, "flops_per_s": flops,
                     "share_of_peak": flops / peak, "padding_share": padding}  # fmt: skip
    out["ratio"] = out["ours"]["tokens_per_s"] / out["baseline"]["tokens_per_s"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of baseline + ours")
    args = parser.parse_args(argv)
    result = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    peak = result["matmul_peak_flops"] / 1e9
    print(f"| side | tokens/s | GFLOP/s | share of matmul peak ({peak:.0f} GFLOP/s) | padding |")
    print("|---|---:|---:|---:|---:|")
    for label, side in (("Trainer + peft, grouped by length", "baseline"), ("train stage", "ours")):
        r = result[side]
        gflops = r["flops_per_s"] / 1e9
        print(
            f"| {label} | {r['tokens_per_s']:,.0f} | {gflops:.1f} | {r['share_of_peak']:.0%} "
            f"| {r['padding_share']:.1%} |"
        )
    print(f"ratio (train stage / baseline tokens/s): {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()
