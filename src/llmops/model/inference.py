"""Answer task inputs: render the prompt, generate, parse. The one path for eval and serving.

    model = TaskModel.load(Path("models/base"), Path("models/adapter"), task)
    answers = model.answer([{"<input field>": "..."}], decoding)

Prompts are rendered with the template saved next to the adapter (the one it was trained
with) by `llmops.model.tokenised.build_prompt`, tokenized by
`llmops.config.prompts.prompt_ids` exactly as in training, grouped by length into batches,
left-padded, and decoded greedily by default with the KV cache; the output is parsed by
`Task.parse_answer`, so a malformed answer is a result, not a crash. `Answer` (text, parsed
fields, token count) is what a caller gets. The service uses `complete` (per-prompt token
limits, prompt token counts, whether the model ended its answer) and `stream` (the same
generation, piece by piece).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from llmops.config.params import DecodingParams
from llmops.config.prompts import Prompt, PromptTemplate, load_template, prompt_ids
from llmops.config.task import Parsed, Task
from llmops.model.models import Device, load_base, load_tokenizer, pick_device
from llmops.model.tokenised import build_prompt


@dataclass(frozen=True)
class Generated:
    """One generation: the text up to end-of-sequence, token counts, and whether the model
    ended it (False: cut at the token limit)."""

    text: str
    new_tokens: int
    prompt_tokens: int
    finished: bool


@dataclass(frozen=True)
class Answer:
    """One generated answer: the text, its parsed output fields and its token count."""

    text: str
    parsed: Parsed
    new_tokens: int


@dataclass
class TaskModel:
    """A base model, optionally with its LoRA adapter, ready to answer the task."""

    model: torch.nn.Module
    tokenizer: object
    template: PromptTemplate
    task: Task
    device: Device

    @classmethod
    def load(
        cls,
        base: Path,
        adapter: Path | None,
        task: Task,
        template: Path | None = None,
        trust_remote_code: bool = False,
        precision: str = "auto",
    ) -> TaskModel:
        """Base (+ adapter) on the best device; the template defaults to the adapter's."""
        device = pick_device(precision)
        model = load_base(base, trust_remote_code, device)
        tokenizer = load_tokenizer(adapter or base, trust_remote_code)
        if adapter is not None:
            from peft import PeftModel

            # Not merged: the eval stage switches the adapter (and the modules it trained in
            # full) off to score the base model with the same loaded weights.
            model = PeftModel.from_pretrained(model, adapter).to(device.device).eval()
        path = template or (adapter / "prompt.jinja" if adapter else None)
        if path is None:
            raise ValueError("a template is needed when there is no adapter")
        return cls(model, tokenizer, load_template(path, task.variables()), task, device)

    def prompts(self, rows: list[dict]) -> list[Prompt]:
        """The prompt of each row (a mapping holding at least the task's input fields)."""
        return [build_prompt(self.template, self.task, r) for r in rows]

    def generate(self, prompts: list[Prompt], decoding: DecodingParams, batch_size: int):
        """Generated text and its token count per prompt, in input order."""
        return [(g.text, g.new_tokens) for g in self.complete(prompts, decoding, batch_size)]

    @torch.no_grad()
    def complete(
        self,
        prompts: list[Prompt],
        decoding: DecodingParams,
        batch_size: int,
        limits: list[int] | None = None,
    ) -> list[Generated]:
        """Generate for each prompt, in input order; `limits` caps each prompt's new tokens
        (default `decoding.max_new_tokens`). A batch generates up to its largest limit and
        each row is cut to its own: with greedy decoding that is what generating with the
        row's limit alone gives."""
        ids = [prompt_ids(self.tokenizer, p) for p in prompts]
        generated = self.generate_ids(ids, decoding, batch_size, limits)
        return [self.finish(g, len(i)) for g, i in zip(generated, ids, strict=True)]

    @torch.no_grad()
    def generate_ids(
        self,
        ids: list[list[int]],
        decoding: DecodingParams,
        batch_size: int,
        limits: list[int] | None = None,
    ) -> list[list[int]]:
        """`complete` on token ids: the new tokens of each prompt, cut to its limit."""
        limits = limits or [decoding.max_new_tokens] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[list[int]] = [[] for _ in ids]
        if decoding.do_sample:
            torch.manual_seed(decoding.seed)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self._left_pad([ids[i] for i in chunk])
            options = self._decoding(decoding) | {"max_new_tokens": max(limits[i] for i in chunk)}
            with self.device.autocast:
                generated = self.model.generate(**batch, **options)
            new = generated[:, batch["input_ids"].shape[1] :].cpu()
            for i, row in zip(chunk, new, strict=True):
                out[i] = row.tolist()[: limits[i]]
        return out

    def stream(
        self,
        prompt: Prompt,
        decoding: DecodingParams,
        limit: int | None = None,
        start: Callable[[Callable[[], None]], object] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[str | Generated]:
        """Generate for one prompt, yielding text pieces as tokens come, then the `Generated`
        record (its text is the whole answer, equal to what `complete` gives). Generation
        runs apart from the caller: `start(fn)` runs `fn` (default: in a new thread); it
        ends early, after the current token, once `stop` is set."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class Stopped(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
                done = stop is not None and stop.is_set()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

        ids = prompt_ids(self.tokenizer, prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        batch = self._left_pad([ids])
        options = self._decoding(decoding) | {
            "max_new_tokens": limit or decoding.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([Stopped()]),
        }
        result: dict[str, torch.Tensor | BaseException] = {}

        def run() -> None:
            try:
                with torch.no_grad(), self.device.autocast:
                    if decoding.do_sample:
                        torch.manual_seed(decoding.seed)
                    result["ids"] = self.model.generate(**batch, **options)
            except BaseException as err:  # re-raised in the caller's thread
                result["error"] = err
                streamer.end()

        finished = threading.Event()

        def task() -> None:
            try:
                run()
            finally:
                finished.set()

        (start or (lambda fn: threading.Thread(target=fn, daemon=True).start()))(task)
        yield from (piece for piece in streamer if piece)
        finished.wait()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        new = result["ids"][0, len(ids) :].cpu().tolist()  # type: ignore[index]
        yield self.finish(new, len(ids))

    def finish(self, generated: list[int], prompt_tokens: int) -> Generated:
        """The `Generated` record of new tokens (text up to end-of-sequence)."""
        eos = self.tokenizer.eos_token_id
        text, n = self.decode(generated)
        return Generated(text, n, prompt_tokens, eos in generated)

    def answer(self, rows: list[dict], decoding: DecodingParams, batch_size: int = 64):
        """Parsed answers for rows of inputs (already normalised and redacted)."""
        texts = self.generate(self.prompts(rows), decoding, batch_size)
        return [Answer(t, self.task.parse_answer(t), n) for t, n in texts]

    def timed_answer(self, rows: list[dict], decoding: DecodingParams, batch_size: int):
        """`answer` plus its wall-clock seconds."""
        start = time.perf_counter()
        answers = self.answer(rows, decoding, batch_size)
        return answers, time.perf_counter() - start

    def _left_pad(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        return {
            "input_ids": ids.to(self.device.device),
            "attention_mask": mask.to(self.device.device),
        }

    def _decoding(self, decoding: DecodingParams) -> dict:
        options = {
            "max_new_tokens": decoding.max_new_tokens,
            "do_sample": decoding.do_sample,
            "use_cache": True,
            "eos_token_id": self.tokenizer.eos_token_id,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if decoding.do_sample:
            options |= {"temperature": decoding.temperature, "top_p": decoding.top_p}
        else:  # override sampling defaults a hub model's generation_config may carry
            options |= {"temperature": None, "top_p": None, "top_k": None}
        return options

    def decode(self, generated: list[int]) -> tuple[str, int]:
        """Text and token count of a generated sequence, up to its first end-of-sequence."""
        eos = self.tokenizer.eos_token_id
        tokens = generated[: generated.index(eos)] if eos in generated else generated
        return self.tokenizer.decode(tokens, skip_special_tokens=True), len(tokens)
