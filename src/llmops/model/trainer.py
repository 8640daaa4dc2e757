"""The LoRA training loop behind the train stage: steps, logging, validation, checkpoints.

    result = fit(setup, params.train, Path("models/checkpoints"))

`setup` (llmops.stages.train.prepare) holds the tokenized splits and the model with a fresh
adapter. Each optimizer step takes its micro-batches from a length-grouped plan that is a
function of (seed, epoch), and seeds dropout (LoRA's, and the prompt tokens' of
`train.token_dropout`) from (seed, step, process), so a run resumed from a checkpoint
computes what the uninterrupted run would have.

How long it trains is fixed before the first step, so the learning-rate schedule knows its
end: `train.epochs` passes, or fewer when `train.token_budget` (tokens of the planned
batches) or `train.max_steps` runs out first. With `train.patience`, training also stops
when the validation loss has not improved for that many validations in a row, and the
weights of the lowest validation loss are the ones kept. The result says which of these
ended the run. Under `accelerate launch` each process
takes its share of a step's batches and DDP averages the gradients; at the end the
processes compare adapter checksums.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from llmops.config.params import TrainParams
from llmops.model import checkpoint, lora
from llmops.model.batching import collate, drop_prompt_tokens, plan_batches
from llmops.model.models import count_parameters, pick_device
from llmops.model.tokenised import DataError, Example

log = logging.getLogger(__name__)
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
OnMetrics = Callable[[dict[str, float], int], None]


@dataclass
class Setup:
    """Everything checked and loaded before the first step."""

    tokenizer: object
    model: torch.nn.Module  # peft model (base + fresh adapter)
    train: list[Example]
    val: list[Example]
    stamp: str  # fingerprint of params, data, base model and prompt
    groups: list[int] | None = None  # each training example's input (train.references)


@dataclass
class Result:
    """Figures of a finished run."""

    metrics: dict[str, float]
    train_curve: list[list[float]]  # [step, loss]
    val_curve: list[list[float]]


def check_batches(examples: int, cfg: TrainParams, world: int) -> None:
    """Every process needs a batch each step (one without would stall DDP)."""
    batches = -(-examples // cfg.batch_size)
    if batches < world * cfg.grad_accum:
        raise DataError(
            f"{examples} training examples make {batches} batches of train.batch_size "
            f"{cfg.batch_size}, fewer than {world} processes x train.grad_accum "
            f"{cfg.grad_accum}; lower one of them"
        )


def schedule_length(cfg: TrainParams, per_epoch: int, tokens_per_step: float) -> tuple[int, str]:
    """The optimizer steps a run plans, and which bound sets them: "epochs", "token_budget"
    or "max_steps" (on a tie, in that order)."""
    bounds = {"epochs": cfg.epochs * per_epoch}
    if cfg.token_budget is not None:
        bounds["token_budget"] = max(1, math.floor(cfg.token_budget / tokens_per_step))
    if cfg.max_steps is not None:
        bounds["max_steps"] = cfg.max_steps
    bound = min(bounds, key=bounds.__getitem__)
    return bounds[bound], bound


def stamp_for(setup: Setup, world: int) -> str:
    """Checkpoint fingerprint: another process count changes batch slicing and schedule."""
    return f"{setup.stamp}-processes{world}"


def fit(
    setup: Setup,
    cfg: TrainParams,
    checkpoints: Path,
    accelerator=None,
    on_metrics: OnMetrics | None = None,
    run_id: str = "",
) -> Result:
    """Train; resumes from the newest matching checkpoint in `checkpoints`."""
    from accelerate import Accelerator

    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    drawn = cfg.references == "one_per_epoch" and setup.groups is not None
    check_batches(len(set(setup.groups)) if drawn else len(setup.train), cfg, acc.num_processes)
    return Loop(setup, cfg, checkpoints, acc, on_metrics, run_id).run()


class Loop:
    """One training run's state and steps."""

    def __init__(self, setup, cfg: TrainParams, folder: Path, acc, on_metrics, run_id: str):
        from transformers import get_scheduler

        self.setup, self.cfg, self.folder, self.acc = setup, cfg, folder, acc
        self.on_metrics = on_metrics
        self.dev = pick_device(cfg.precision, acc.device)
        self.lengths = [len(e.input_ids) for e in setup.train]
        self.groups = setup.groups if cfg.references == "one_per_epoch" else None
        first = self.plan(0)
        per_step = acc.num_processes * cfg.grad_accum
        self.per_epoch = max(1, len(first) // per_step)
        planned = sum(self.lengths[i] for batch in first for i in batch)
        self.total, bound = schedule_length(cfg, self.per_epoch, planned / len(first) * per_step)
        self.stamp = stamp_for(setup, acc.num_processes)
        self.module = acc.prepare(lora.AnswerLoss(setup.model))
        self.weights = lora.trainable(setup.model)
        self.optimizer = torch.optim.AdamW(
            self.weights.values(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.schedule = get_scheduler(
            SCHEDULES[cfg.schedule], self.optimizer, cfg.warmup_steps, self.total
        )
        self.state = {
            "step": 0,
            "tokens": 0,
            "positions": 0,
            "seconds": 0.0,
            "train": [],
            "val": [],
            "recent": [],
            "run_id": run_id,
            "stopped": bound,
            "best": None,  # [step, validation loss] of the lowest so far (train.patience)
            "best_weights": {},
            "waited": 0,  # validations since the best
        }
        self.plans: dict[int, list[list[int]]] = {}
        # Non-padding tokens and batch positions (padding included) this process trained on.
        self.started, self.tokens_here, self.positions_here = time.perf_counter(), 0, 0

    def run(self) -> Result:
        from tqdm.auto import tqdm

        self.restore()
        bar = tqdm(
            total=self.total,
            initial=self.state["step"],
            desc="train",
            disable=not self.acc.is_main_process,
        )
        window: list[float] = []
        while self.state["step"] < self.total:
            loss = self.step()
            step = self.state["step"]
            window.append(loss)
            keep = max(self.cfg.log_every, self.total // 20)
            self.state["recent"] = [*self.state["recent"], loss][-keep:]
            bar.update(1)
            if step % self.cfg.log_every == 0 or step == self.total:
                bar.set_postfix(self.log_train(window))
                window = []
            if step % self.cfg.eval_every == 0 or step == self.total:
                self.state["val"].append([step, self.validation_loss()])
                self.emit({"val_loss": self.state["val"][-1][1]})
                if self.out_of_patience() and step < self.total:
                    self.state["stopped"] = "early_stop"
                    break
            if step % self.cfg.checkpoint_every == 0 and step < self.total:
                self.save()
        bar.close()
        self.keep_best()
        return self.result()

    def out_of_patience(self) -> bool:
        """Track the lowest validation loss (and its weights); whether `train.patience`
        validations in a row have passed without a lower one."""
        if self.cfg.patience is None:
            return False
        state = self.state
        step, loss = state["val"][-1]
        lower = state["best"] is None or loss < state["best"][1]
        if lower and not math.isnan(loss):  # a NaN loss is never the best
            state["best"], state["waited"] = [step, loss], 0
            state["best_weights"] = {k: v.detach().cpu().clone() for k, v in self.weights.items()}
            return False
        state["waited"] += 1
        return state["waited"] >= self.cfg.patience

    def keep_best(self) -> None:
        """With early stopping on, end on the weights of the lowest validation loss."""
        best = self.state["best"]
        if best is not None and best[0] != self.state["step"]:
            lora.load_trainable(self.setup.model, self.state["best_weights"])
            log.info("kept the weights of step %d (validation loss %.4f)", *best)

    def restore(self) -> None:
        found = checkpoint.latest(self.folder, self.stamp)
        if found:
            lora.load_trainable(self.setup.model, found.weights())
            saved = found.state()
            self.optimizer.load_state_dict(saved.pop("optimizer"))
            self.schedule.load_state_dict(saved.pop("scheduler"))
            saved.setdefault("positions", saved["tokens"])  # older checkpoints: no count
            self.state |= saved
            log.info("resuming from %s (step %d of %d)", found.path, found.step, self.total)
        elif self.acc.is_main_process:
            checkpoint.clear(self.folder)
        self.acc.wait_for_everyone()

    def step(self) -> float:
        """One optimizer step over this process's micro-batches; returns its loss."""
        cfg, acc, step = self.cfg, self.acc, self.state["step"]
        epoch, index = divmod(step, self.per_epoch)
        if epoch not in self.plans:
            self.plans[epoch] = self.plan(epoch)
        first = (index * acc.num_processes + acc.process_index) * cfg.grad_accum
        mine = self.plans[epoch][first : first + cfg.grad_accum]
        seed = hash((cfg.seed, step, acc.process_index)) & 0xFFFF_FFFF
        torch.manual_seed(seed)  # LoRA dropout
        words = torch.Generator().manual_seed(seed)  # token dropout
        self.module.train()
        loss_sum = 0.0
        for i, ids in enumerate(mine):
            examples = [
                drop_prompt_tokens(self.setup.train[j], cfg.token_dropout, words) for j in ids
            ]
            batch = collate(examples, self.setup.tokenizer.pad_token_id)
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            sync = acc.no_sync(self.module) if i < len(mine) - 1 else nullcontext()
            with sync:
                with self.dev.autocast:  # forward only; backward runs outside autocast
                    total, count = self.module(**batch)
                    loss = total / count.clamp(min=1) / len(mine)
                acc.backward(loss)
            loss_sum += loss.item()
            self.tokens_here += int(batch["attention_mask"].sum())
            self.positions_here += batch["attention_mask"].numel()
        acc.clip_grad_norm_(self.weights.values(), cfg.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state["step"] = step + 1
        return loss_sum

    def plan(self, epoch: int) -> list[list[int]]:
        cfg = self.cfg
        return plan_batches(self.lengths, cfg.batch_size, cfg.seed, epoch, groups=self.groups)

    def seen(self) -> tuple[int, int]:
        """Non-padding tokens and batch positions of all processes since this one started."""
        mine = torch.tensor([self.tokens_here, self.positions_here], device=self.acc.device)
        tokens, positions = self.acc.reduce(mine, "sum").tolist()
        return int(tokens), int(positions)

    def log_train(self, window: list[float]) -> dict[str, str]:
        seen, elapsed = self.seen()[0], time.perf_counter() - self.started
        mean = torch.tensor(sum(window) / len(window), device=self.acc.device)
        loss = float(self.acc.reduce(mean, "mean"))
        self.state["train"].append([self.state["step"], loss])
        lr = self.schedule.get_last_lr()[0]
        self.emit({"train_loss": loss, "tokens_per_s": seen / elapsed, "lr": lr})
        return {"loss": f"{loss:.3f}", "tok_s": f"{seen / elapsed:,.0f}"}

    def emit(self, figures: dict[str, float]) -> None:
        if self.on_metrics and self.acc.is_main_process:
            self.on_metrics(figures, self.state["step"])

    def save(self) -> None:
        tokens, positions = self.seen()
        if self.acc.is_main_process:
            saved = dict(self.state)
            saved["seconds"] = self.state["seconds"] + time.perf_counter() - self.started
            saved["tokens"] = self.state["tokens"] + tokens
            saved["positions"] = self.state["positions"] + positions
            saved["optimizer"] = self.optimizer.state_dict()
            saved["scheduler"] = self.schedule.state_dict()
            weights = lora.trainable(self.setup.model)
            checkpoint.save(self.folder, self.state["step"], weights, saved, self.stamp)
        self.acc.wait_for_everyone()

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean answer-token loss over the validation split (sharded across processes)."""
        acc, val = self.acc, self.setup.val
        # Unwrapped: DDP's forward would sync buffers, and processes may run different
        # numbers of validation batches.
        module = acc.unwrap_model(self.module).eval()
        order = sorted(range(len(val)), key=lambda i: len(val[i].input_ids))
        size = self.cfg.batch_size * 2
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        totals = torch.zeros(2, device=acc.device)
        for ids in batches[acc.process_index :: acc.num_processes]:
            batch = collate([val[i] for i in ids], self.setup.tokenizer.pad_token_id)
            with self.dev.autocast:
                loss, count = module(**{k: v.to(acc.device) for k, v in batch.items()})
            totals += torch.stack([loss.float(), count.float()])
        totals = acc.reduce(totals, "sum")
        return float(totals[0] / totals[1])

    def result(self) -> Result:
        acc, state = self.acc, self.state
        checksums = ranks_agree(self.weights, acc)
        if acc.num_processes > 1:
            log.info("adapter checksum per process: %s (all equal)", checksums)
        seconds = state["seconds"] + time.perf_counter() - self.started
        tokens, positions = self.seen()
        tokens, positions = state["tokens"] + tokens, state["positions"] + positions
        trainable, total_params = count_parameters(self.setup.model)
        # Mean over the last 5% of steps (at least log_every steps): one batch is too noisy.
        recent = torch.tensor(sum(state["recent"]) / len(state["recent"]), device=acc.device)
        kept = state["best"] or state["val"][-1]
        metrics = {
            "train_loss": float(acc.reduce(recent, "mean")),  # of the last steps run
            "val_loss": kept[1],  # of the weights saved
            "steps": state["step"],
            "epochs": round(state["step"] / self.per_epoch, 3),
            "planned_steps": self.total,
            "stopped": state["stopped"],  # epochs, token_budget, max_steps or early_stop
            "kept_step": kept[0],
            "train_tokens": tokens,
            "train_seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
            # Measured on the batches trained on (after word dropout), not on the plan.
            "padding_share": round(1 - tokens / positions, 4) if positions else 0.0,
            "trainable_params": trainable,
            "total_params": total_params,
            "processes": acc.num_processes,
        }
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
