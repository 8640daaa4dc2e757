"""Iteration-level scheduling of generation (continuous batching): requests join and leave
the running batch between decoding steps, instead of waiting for a whole batch to end.

    scheduler = Scheduler(task_model, decoding, max_rows=32)
    done = scheduler.submit(prompt_ids, limit=160)     # from any thread: a Future
    while scheduler.step():                            # on the model's thread
        pass
    tokens = done.result()                             # generated ids, cut at EOS or limit

Each `step` prefills every waiting prompt at once (left-padded, as eval pads a batch),
joins their key/value cache to the running batch's (both left-padded to one length), then
decodes one token for every row; a row that wrote end-of-sequence or reached its limit
leaves at once, and its place is free for the next step. Greedy decoding computes, row by
row, what `TaskModel.complete` computes (only the padding around a row differs), so it
gives eval's tokens. Where that cannot hold, jobs are generated a group at a time through
`TaskModel.generate_ids`, as eval generates: sampling, a generation config that adds
logits processors, or a model whose cache is not one plain key/value tensor per layer
(sliding windows, hybrid attention). A step that raises fails the jobs in it (their
futures carry the error; the caller may retry each alone) and starts afresh.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.functional import pad

from llmops.params import DecodingParams

# While rows run, waiting prompts join once JOIN_AT of them can (or after JOIN_AT steps):
# on 2 CPU cores, one prefill of 4 prompts costs 14 ms, four prefills of one 27 ms, and a
# decoding step of 32 rows 10 ms.
JOIN_AT = 4
# Generation-config settings that add a logits processor unless they hold these values.
NEUTRAL = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
    "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,), "sequence_bias": (None,), "num_beams": (None, 1),
    "guidance_scale": (None, 1.0), "exponential_decay_length_penalty": (None,),
    "watermarking_config": (None,), "renormalize_logits": (None, False),
}  # fmt: skip


@dataclass(eq=False)
class Job:
    """One prompt to generate for: its ids, its token limit, what it generated so far."""

    ids: list[int]
    limit: int
    done: Future = field(default_factory=Future)
    tokens: list[int] = field(default_factory=list)
    finished: bool = False


class Scheduler:
    """Runs jobs of a `llmops.inference.TaskModel`; `step` belongs to the model's thread."""

    def __init__(self, model: Any, decoding: DecodingParams, max_rows: int,
                 observe: Callable[[int], None] | None = None):  # fmt: skip
        self.model, self.decoding, self.max_rows = model, decoding, max_rows
        self.observe = observe or (lambda rows: None)  # rows decoded per step (a metric)
        self.continuous = not decoding.do_sample and plain(model.model.generation_config)
        self._lock = threading.Lock()
        self._waiting: deque[Job] = deque()
        self._rows: list[Job] = []
        self._cache: Any = None
        self._mask = self._next = torch.empty(0)
        self._held = 0  # steps the waiting prompts have been held back

    def submit(self, ids: list[int], limit: int) -> Future:
        job = Job(ids, limit)
        with self._lock:
            self._waiting.append(job)
        return job.done

    def busy(self) -> bool:
        with self._lock:
            return bool(self._waiting or self._rows)

    @torch.no_grad()
    def step(self) -> bool:
        """One iteration: admit what waits (as places allow), decode one token for every
        row, retire the finished. Whether work remains."""
        with self._lock:
            joining = min(self.max_rows - len(self._rows), len(self._waiting))
            if self._rows and joining < JOIN_AT and self._held < JOIN_AT:
                joining = 0  # gather a few: one prefill of several costs less than several
            admitted = [self._waiting.popleft() for _ in range(joining)]
            self._held = 0 if admitted or not self._waiting else self._held + 1
        try:
            if not self.continuous:
                self._group(admitted)
            else:
                if admitted:
                    self._admit(admitted)
                if self._rows:
                    self._decode()
        except Exception as err:
            for job in {*admitted, *self._rows}:
                if not job.done.done():
                    job.done.set_exception(err)
            self._rows, self._cache = [], None
        return self.busy()

    def _group(self, jobs: list[Job]) -> None:
        """Generate `jobs` together through eval's path (`TaskModel.generate_ids`)."""
        if jobs:
            tokens = self.model.generate_ids([j.ids for j in jobs], self.decoding, len(jobs),
                                             [j.limit for j in jobs])  # fmt: skip
            self.observe(len(jobs))
            for job, generated in zip(jobs, tokens, strict=True):
                job.done.set_result(generated)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cache: Any) -> torch.Tensor:  # fmt: skip
        with self.model.device.autocast:
            out = self.model.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                   cache=cache, use_cache=True)  # fmt: skip
        return out.logits[:, -1].argmax(-1)

    def _admit(self, jobs: list[Job]) -> None:
        """Prefill `jobs` together and join them to the running batch."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        batch = self.model._left_pad([j.ids for j in jobs])
        mask = batch["attention_mask"]
        cache = DynamicCache(config=self.model.model.config)
        first = self._forward(batch["input_ids"], mask, (mask.cumsum(-1) - 1).clamp(min=0), cache)
        if not all(type(layer) is DynamicLayer for layer in cache.layers):
            self.continuous = False  # learnt on the first prefill, when no row runs yet
            self._group(jobs)
            return
        running = bool(self._rows)
        self._join(cache, mask)
        self._rows += jobs
        self._next = torch.cat([self._next, first]) if running else first
        self._emit(jobs, first.tolist())

    def _join(self, cache: Any, mask: torch.Tensor) -> None:
        """The new rows' cache and mask below the running ones, all left-padded to one length."""
        if self._cache is None or not self._rows:
            self._cache, self._mask = cache, mask
            return
        width = max(self._mask.shape[1], mask.shape[1])
        for old, new in zip(self._cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_pad(old.keys, width), _pad(new.keys, width)])
            old.values = torch.cat([_pad(old.values, width), _pad(new.values, width)])
        self._mask = torch.cat([_pad_mask(self._mask, width), _pad_mask(mask, width)])

    def _decode(self) -> None:
        mask = pad(self._mask, (0, 1), value=1)
        positions = mask.sum(-1, keepdim=True) - 1
        chosen = self._forward(self._next[:, None], mask, positions, self._cache)
        self.observe(len(self._rows))
        self._mask, self._next = mask, chosen
        self._emit(self._rows, chosen.tolist())

    def _emit(self, jobs: list[Job], tokens: list[int]) -> None:
        """Each job's new token; then the finished rows leave the batch."""
        eos = self.model.tokenizer.eos_token_id
        for job, token in zip(jobs, tokens, strict=True):
            job.tokens.append(token)
            job.finished = token == eos or len(job.tokens) >= job.limit
        keep = [i for i, job in enumerate(self._rows) if not job.finished]
        for job in self._rows:
            if job.finished:
                job.done.set_result(job.tokens)
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[i] for i in keep]
        if not keep:
            self._cache = None
            return
        index = torch.tensor(keep, device=self._mask.device)
        self._cache.batch_select_indices(index)
        self._mask, self._next = self._mask[index], self._next[index]
        start = int(self._mask.any(0).int().argmax())  # columns all rows have as padding
        if start:
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
            self._mask = self._mask[:, start:]


def plain(config: Any) -> bool:
    """Whether a generation config adds no logits processor to greedy decoding."""
    return all(getattr(config, name, None) in values for name, values in NEUTRAL.items())


def _pad(states: torch.Tensor, width: int) -> torch.Tensor:
    """Key or value states [batch, heads, length, dim] left-padded to `width`."""
    return pad(states, (0, 0, width - states.shape[2], 0))


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return pad(mask, (width - mask.shape[1], 0))
