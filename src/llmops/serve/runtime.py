"""The service's core, free of HTTP: the packaged model and what is done with one request.

    package = Package.read(model_dir)              # serving.json: task, decoding, cleaning, lineage
    inputs = package.clean({"<input field>": "..."}, where="items[0]")   # as prep cleans
    served = Served.load(model_dir)                # + weights and the adapter's prompt template
    results = served.complete([Item(inputs, max_tokens=160)])
    model = ModelThread(model_dir)                 # the same, on a thread of its own, awaitable

A packaged model (what `make bento` puts in the BentoML model store, `llmops.ship.bento`) is a
folder: `serving.json`, `prompt.jinja` (the template the adapter was trained with), and
`base/` + `adapter/`, or `merged/` when `serve.merge` is on. Inputs are normalised and
PII-redacted exactly as the prep stage did for the training data
(`llmops.config.textnorm.normalize`, `llmops.data.redact.redact`), then answered by
`llmops.model.inference.TaskModel`, the path eval measured. A request the model cannot take
is a `RequestError` naming the field; an answer that does not parse is a result with
`parsed: false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from llmops.config.params import DecodingParams, Params, TaskParams, parse
from llmops.config.task import Field, Task
from llmops.config.textnorm import normalize
from llmops.data.redact import redact

log = logging.getLogger(__name__)
SERVING_FILE = "serving.json"
TEMPLATE_FILE = "prompt.jinja"
FORMAT = 1
CONTEXT, FAILED = "context_length_exceeded", "generation_failed"  # why a Result has no answer
CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    404: "not_found",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media",
    422: "invalid_value",
    503: "overloaded",
}


class RequestError(ValueError):
    """A request the service refuses: HTTP status, message, the field (param) and a code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.code = code or CODES.get(status, "error")


@dataclass(frozen=True)
class Package:
    """`serving.json`: what the model was trained and evaluated with, and where it came from."""

    task: TaskParams
    decoding: DecodingParams
    unicode_form: str  # prep.unicode_form
    redact: tuple[str, ...]  # prep.redact
    trust_remote_code: bool
    merged: bool
    lineage: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Params, merged: bool, lineage: dict) -> Package:
        return cls(
            params.task,
            params.decoding,
            params.prep.unicode_form,
            params.prep.redact,
            params.base.trust_remote_code,
            merged,
            lineage,
        )

    @classmethod
    def read(cls, folder: Path) -> Package:
        path = folder / SERVING_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
        return cls(
            task=parse(TaskParams, data["task"], str(path), "task"),
            decoding=parse(DecodingParams, data["decoding"], str(path), "decoding"),
            unicode_form=data["unicode_form"],
            redact=tuple(data["redact"]),
            trust_remote_code=bool(data["trust_remote_code"]),
            merged=bool(data["merged"]),
            lineage=data["lineage"],
        )

    def write(self, folder: Path) -> None:
        data = {"format": FORMAT, **asdict(self)}
        text = json.dumps(data, indent=2, ensure_ascii=False, default=list)
        (folder / SERVING_FILE).write_text(text + "\n", encoding="utf-8")

    @cached_property
    def task_form(self) -> Task:
        """The task, built once (it is read on every request)."""
        return Task.from_params(self.task)

    def clean(self, inputs: Mapping[str, Any], where: str, whole: bool = False) -> dict[str, str]:
        """The task's input fields of one request, cleaned and redacted as prep does.
        Errors name `where.<field>`, or `where` itself when `whole` (one field given whole,
        such as a chat message holding the only input)."""
        task, out = self.task_form, {}
        unknown = sorted(set(inputs) - {f.name for f in task.inputs})
        if unknown:
            expected = [f.name for f in task.inputs]
            raise RequestError(
                422, f"unknown field {unknown[0]!r}; expected {expected}", _join(where, unknown[0])
            )
        for f in task.inputs:
            param = where if whole else _join(where, f.name)
            value = inputs.get(f.name)
            if not isinstance(value, str):
                got = "nothing" if value is None else type(value).__name__
                raise RequestError(422, f"{param}: expected a string, got {got}", param)
            encodable(value, param)
            if f.is_label:
                out[f.name] = label(f, value, param)
                continue
            value = normalize(value, self.unicode_form)
            if not value:
                raise RequestError(422, f"{param}: empty after cleaning", param)
            if len(value) > f.max_chars:
                message = f"{param}: {len(value)} characters, at most {f.max_chars}"
                raise RequestError(413, message, param, "input_too_long")
            out[f.name] = redact(value, self.redact)[0]
        return out

    def redact_text(self, text: str) -> str:
        """PII redacted from text bound for the request log (model output, feedback)."""
        return redact(text, self.redact)[0]


def encodable(value: str, param: str) -> str:
    """`value` if it is Unicode text UTF-8 can encode, else a 422 naming `param`. JSON may
    carry a lone surrogate ("\\ud800"); it is refused here, on its own, before it can reach a
    tokenizer, a batch shared with other requests, a log line or a response."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        message = f"{param}: not valid Unicode text (a lone surrogate at character {err.start})"
        raise RequestError(422, message, param, "invalid_text") from None
    return value


def label(field: Field, value: str, param: str) -> str:
    """`value` if it is one of the label field's values, else a 422 naming `param` (the
    value is not echoed: it may be anything, PII included)."""
    if value not in field.values:
        raise RequestError(422, f"{param}: not one of {list(field.values)}", param)
    return value


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


@dataclass(frozen=True)
class Item:
    """One input to answer: cleaned input fields and the most tokens to generate."""

    inputs: dict[str, str]
    max_tokens: int


@dataclass(frozen=True)
class Result:
    """One answer: the text, its parsed fields, token counts; or the reason it was refused."""

    text: str = ""
    output: dict[str, str | None] = field(default_factory=dict)
    parsed: bool = False
    parse_error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # stop: the model ended it; length: cut at max_tokens
    error: str = ""  # non-empty: not generated, for the reason `error_code` names
    error_code: str = ""  # CONTEXT (the prompt does not fit) or FAILED (generation raised)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def failed(cls, err: BaseException | None = None) -> Result:
        """The result of an item whose generation raised (`err`, when it is known)."""
        why = f" ({type(err).__name__})" if err is not None else ""
        return cls(error=f"generation failed{why}", error_code=FAILED)

    def refusal(self, param: str) -> RequestError | None:
        """What the client gets for a result without an answer (413 for a prompt over the
        context, 500 for a failed generation), naming `param`; None for an answer."""
        if not self.error:
            return None
        status = 500 if self.error_code == FAILED else 413
        return RequestError(status, f"{param}: {self.error}", param, self.error_code or CONTEXT)


@dataclass(frozen=True)
class Pending:
    """An item queued on the scheduler: its future tokens and its prompt's length."""

    tokens: Future
    prompt_tokens: int


@dataclass
class Served:
    """A packaged model, loaded: answers items through `llmops.model.inference`, generation
    scheduled token by token (`llmops.serve.scheduler`), at most `batch_size` rows at a time."""

    package: Package
    model: Any  # llmops.model.inference.TaskModel (imported on load: it pulls in torch)
    context: int | None
    batch_size: int = 64
    observe: Any = None  # called with the rows of each decoding step (a metric)
    scheduler: Any = field(init=False)

    def __post_init__(self) -> None:
        from llmops.serve.scheduler import Scheduler

        self.scheduler = Scheduler(self.model, self.package.decoding, self.batch_size, self.observe)

    @classmethod
    def load(
        cls, folder: Path, precision: str = "auto", batch_size: int = 64, observe: Any = None
    ) -> Served:
        from llmops.model.inference import TaskModel
        from llmops.model.models import context_length

        package = Package.read(folder)
        weights = folder / ("merged" if package.merged else "base")
        adapter = None if package.merged else folder / "adapter"
        model = TaskModel.load(
            weights,
            adapter,
            package.task_form,
            folder / TEMPLATE_FILE,
            package.trust_remote_code,
            precision,
        )
        return cls(package, model, context_length(weights), batch_size, observe)

    def _prepared(self, item: Item) -> tuple[Any, list[int]] | Result:
        """The item's prompt and its ids, or the Result that says why it cannot be answered
        (its prompt over the context, or its rendering or tokenizing raised)."""
        from llmops.config.prompts import prompt_ids

        try:
            (prompt,) = self.model.prompts([item.inputs])
            ids = prompt_ids(self.model.tokenizer, prompt)
        except Exception as err:
            log.exception("an item could not be tokenized")
            return Result.failed(err)
        if self.context is not None and len(ids) + item.max_tokens > self.context:
            return Result(
                error_code=CONTEXT,
                error=(
                    f"the prompt takes {len(ids)} tokens; with max_tokens {item.max_tokens} that "
                    f"exceeds the model's context of {self.context}"
                ),
            )
        return prompt, ids

    def start(self, items: list[Item], alone: bool = False) -> list[Pending | Result]:
        """Queue each item that can be answered on the scheduler (`alone`: each generated
        by itself, as a retry is); the others' Results."""
        out: list[Pending | Result] = []
        for item in items:
            prepared = self._prepared(item)
            if isinstance(prepared, Result):
                out.append(prepared)
            else:
                ids = prepared[1]
                done = self.scheduler.submit(ids, item.max_tokens, alone)
                out.append(Pending(done, len(ids)))
        return out

    def outcome(self, pending: Pending) -> Result | None:
        """The Result of a finished pending item; None when its generation raised."""
        if pending.tokens.exception() is not None:
            return None
        return self._result(self.model.finish(pending.tokens.result(), pending.prompt_tokens))

    def complete(self, items: list[Item]) -> list[Result]:
        """Answers in input order, generated here (the caller's thread runs the scheduler).
        A step that fails fails the items in it; each is then tried alone, so an item that
        cannot be generated fails itself (a `FAILED` result) and no other."""
        results = [self._run(p) for p in self.start(items)]
        return [r if r is not None else self._alone(i) for r, i in zip(results, items, strict=True)]

    def _run(self, started: Pending | Result) -> Result | None:
        if isinstance(started, Result):
            return started
        while not started.tokens.done():
            self.scheduler.step()
        return self.outcome(started)

    def _alone(self, item: Item) -> Result:
        result = self._run(self.start([item], alone=True)[0])
        return result or Result.failed()

    def stream(self, item: Item, start: Any = None, stop: Any = None) -> Iterator[str | Result]:
        """Text pieces as they are generated, then the whole `Result`; `start` runs the
        generation and setting the event `stop` ends it early (see `TaskModel.stream`)."""
        prepared = self._prepared(item)
        if isinstance(prepared, Result):
            yield prepared
            return
        decoding = self.package.decoding
        for piece in self.model.stream(prepared[0], decoding, item.max_tokens, start, stop):
            yield piece if isinstance(piece, str) else self._result(piece)

    def _result(self, generated: Any) -> Result:
        parsed = self.model.task.parse_answer(generated.text)
        return Result(
            text=generated.text,
            output=parsed.fields,
            parsed=parsed.valid,
            parse_error=parsed.error,
            prompt_tokens=generated.prompt_tokens,
            completion_tokens=generated.new_tokens,
            finish_reason="stop" if generated.finished else "length",
        )


class ModelThread:
    """A packaged model loaded and run on one thread of its own; the API's backend in-process
    and the generator service's core.

    One thread, because torch's CPU thread team belongs to the thread that first ran it:
    with the model loaded on one thread and answering on another, an answer took 265 ms
    instead of 120 ms on 2 cores. Awaiting callers are not blocked. Requests join the
    scheduler's running batch between decoding steps; the thread runs one step at a time,
    so a streamed answer (generated whole, in one go) takes its turn between steps.
    """

    def __init__(
        self, folder: Path, batch_size: int = 64, precision: str = "auto", observe: Any = None
    ):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        load = self._pool.submit(Served.load, folder, precision, batch_size, observe)
        self.served = load.result()
        self._lock = threading.Lock()
        self._stepping = False

    async def complete(self, items: list[Item]) -> list[Result]:
        """Answers in input order; an item whose generation failed is tried once alone."""
        results = [await self._answer(s) for s in await self._start(items)]
        for i, result in enumerate(results):
            if result is None:
                (again,) = await self._start([items[i]], alone=True)
                retried = await self._answer(again)
                results[i] = retried or Result.failed()
        return results  # type: ignore[return-value]

    async def _start(self, items: list[Item], alone: bool = False) -> list[Pending | Result]:
        started = await asyncio.wrap_future(self._pool.submit(self.served.start, items, alone))
        self._pump()
        return started

    async def _answer(self, started: Pending | Result) -> Result | None:
        if isinstance(started, Result):
            return started
        with contextlib.suppress(Exception):  # its error: outcome() says None
            await asyncio.wrap_future(started.tokens)
        return self.served.outcome(started)

    def _pump(self) -> None:
        """Make sure the scheduler steps while it has work."""
        with self._lock:
            if self._stepping:
                return
            self._stepping = True
        self._pool.submit(self._step)

    def _step(self) -> None:
        try:
            more = self.served.scheduler.step()
        except Exception:  # never leave the scheduler unstepped: it would hang every caller
            log.exception("a scheduler step failed")
            more = self.served.scheduler.busy()
        with self._lock:
            self._stepping = more
        if more:  # the next step after whatever else waits for the thread (a stream)
            self._pool.submit(self._step)

    async def stream(self, item: Item):
        """Pieces, then the `Result`; the generation runs on the model's thread, and stops
        when this generator is closed before the end (the client went away)."""
        import anyio

        stop = threading.Event()
        pieces = self.served.stream(item, start=self._pool.submit, stop=stop)
        end = object()
        try:
            while (piece := await anyio.to_thread.run_sync(next, pieces, end)) is not end:
                yield piece
        finally:
            stop.set()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
