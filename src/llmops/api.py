"""The service's HTTP API (FastAPI, mounted at /v1 by service.py): routes, auth, limits.

    app = FastAPI()
    install(app, Gateway(package, backend, params.serve, RequestLog(Path("logs")), ...))

Routes (all answer errors with OpenAI's error body, naming the field):
- POST /answer: the task's input fields, `{"input": {...}}` or `{"inputs": [{...}, ...]}`;
  the parsed output fields, the raw text, whether it parsed, token counts, the model.
- POST /chat/completions (non-streaming, or server-sent events ending in [DONE]) and
  GET /models, GET /models/{id}: the OpenAI dialect (`llmops.openai_api`), with lineage.
- POST /feedback: a rating (1-5) and an optional corrected answer for a logged request.
Guards: a bearer API key when one is configured (401), the request body size and the
number of inputs (413), input length after cleaning (413), `max_tokens` (400), the body's
schema (422), and at most `serve.max_queue` generation requests in flight (503 with
Retry-After). Every generation request is logged (`llmops.requestlog`) after redaction.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# task endpoint's request model is a local variable built from the task.
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from llmops import openai_api
from llmops.api_models import ERRORS, AnswerRequest, FeedbackRequest, task_models
from llmops.params import ServeParams
from llmops.requestlog import RequestLog
from llmops.serving import Item, Package, RequestError, Result
from llmops.telemetry import Telemetry

log = logging.getLogger(__name__)
CHAT_RESPONSES = {
    200: {"description": "A chat completion, or with `stream: true` server-sent events",
          "content": {"application/json": {"schema": {"type": "object"}},
                      "text/event-stream": {"schema": {"type": "string"}}}},
    **ERRORS,
}  # fmt: skip


@dataclass
class Gateway:
    """Everything the routes need: the package's task and cleaning, where answers come from
    (a backend with `complete(items)` and `stream(item)`), the limits and the log."""

    package: Package
    backend: Any
    serve: ServeParams
    requests: RequestLog
    model: str  # the served model's name (what clients send as `model`)
    version: str  # its version in the model store
    api_key: str = ""
    telemetry: Telemetry = field(default_factory=Telemetry)
    in_flight: int = 0

    @property
    def max_body_bytes(self) -> int:
        chars = sum(f.max_chars for f in self.package.task_form.inputs)
        return 4 * chars * self.serve.max_items + 65_536  # UTF-8, JSON escapes, framing

    def authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise RequestError(401, "missing or wrong API key (Authorization: Bearer <key>)",
                               code="invalid_api_key")  # fmt: skip

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one of `serve.max_queue` places, or refuse with 503."""
        if self.in_flight >= self.serve.max_queue:
            self.telemetry.rejected.inc()
            raise RequestError(503, f"overloaded: {self.in_flight} requests in flight; retry")
        self.in_flight += 1
        self.telemetry.in_flight.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            self.telemetry.in_flight.set(self.in_flight)

    def max_tokens(self, asked: int | None, param: str = "max_tokens") -> int:
        if asked is None:
            return self.package.decoding.max_new_tokens
        if asked > self.serve.max_tokens:
            message = f"{param}: {asked} is more than this service allows ({self.serve.max_tokens})"
            raise RequestError(400, message, param)
        return asked

    def record(self, endpoint: str, request_id: str, started: float, status: int,
               inputs: list[dict] | None = None, results: list[Result] | None = None,
               error: str = "") -> None:  # fmt: skip
        """One request-log line and the metrics of one finished request."""
        seconds = time.perf_counter() - started
        results = results or []
        self.telemetry.observe(endpoint, status, seconds, results)
        self.requests.request({
            "request_id": request_id, "endpoint": endpoint, "model": self.model,
            "version": self.version, "status": status, "latency_ms": round(1000 * seconds, 1),
            "inputs": inputs or [],
            "outputs": [self._logged(r) for r in results],
            "prompt_tokens": sum(r.prompt_tokens for r in results),
            "completion_tokens": sum(r.completion_tokens for r in results),
            "error": error,
        })  # fmt: skip

    def _logged(self, result: Result) -> dict:
        redact = self.package.redact_text
        output = {k: v if v is None else redact(v) for k, v in result.output.items()}
        return {"output": output, "text": redact(result.text), "parsed": result.parsed,
                "finish_reason": result.finish_reason}  # fmt: skip


def install(app: FastAPI, gate: Gateway) -> None:
    """Add the routes and error handlers to `app`."""
    answer_request, answer_response = task_models(gate.package.task_form)
    auth = [Depends(gate.authorize)]
    _errors(app, gate)

    @app.post("/answer", dependencies=auth, response_model=answer_response, responses=ERRORS)
    async def answer(body: answer_request, request: Request) -> JSONResponse:  # type: ignore[valid-type]
        """Answer one input (`input`) or several (`inputs`) of the task."""
        return await _answer(gate, body, request)

    @app.post("/chat/completions", dependencies=auth, responses=CHAT_RESPONSES)
    async def chat(body: openai_api.ChatRequest, request: Request):
        """OpenAI chat completion: the last user message is the task's input."""
        return await _chat(gate, body, request)

    @app.get("/models", dependencies=auth, responses=ERRORS)
    async def models() -> dict:
        """The served model, with its lineage (OpenAI's model list)."""
        return {"object": "list", "data": [_model_card(gate)]}

    @app.get("/models/{model_id:path}", dependencies=auth, responses=ERRORS)
    async def model(model_id: str) -> dict:
        """One model by id."""
        _check_model(gate, model_id, "model_id")
        return _model_card(gate)

    @app.post("/feedback", dependencies=auth, status_code=201, responses=ERRORS)
    async def feedback(body: FeedbackRequest) -> dict:
        """Record a rating and an optional corrected answer for a logged request."""
        return _feedback(gate, body)


def _model_card(gate: Gateway) -> dict:
    created = gate.package.lineage.get("created", 0)
    return {"id": gate.model, "object": "model", "created": created, "owned_by": "llmops",
            "version": gate.version, "lineage": gate.package.lineage}  # fmt: skip


def _check_model(gate: Gateway, name: str, param: str = "model") -> None:
    if name not in (gate.model, gate.version, f"{gate.model}:{gate.version}"):
        message = f"{param}: model {name!r} is not served here; this service serves {gate.model!r}"
        raise RequestError(404, message, param, "model_not_found")


async def _answer(gate: Gateway, body: AnswerRequest, request: Request) -> JSONResponse:
    request_id, started = uuid.uuid4().hex, time.perf_counter()
    inputs: list[dict] = []
    try:
        raw = [body.input] if body.input is not None else body.inputs or []
        if len(raw) > gate.serve.max_items:
            message = f"inputs: {len(raw)} inputs, at most {gate.serve.max_items} per request"
            raise RequestError(413, message, "inputs", "too_many_inputs")
        where = "input" if body.input is not None else "inputs[{}]"
        inputs = [gate.package.clean(r.model_dump(), where.format(i)) for i, r in enumerate(raw)]
        max_tokens = gate.max_tokens(body.max_tokens)
        async with gate.admit():
            results = await gate.backend.complete([Item(x, max_tokens) for x in inputs])
        _refused(results, where, gate)
    except RequestError as err:
        gate.record("answer", request_id, started, err.status, inputs, error=err.message)
        raise
    gate.record("answer", request_id, started, 200, inputs, results)
    answers = [_answer_body(r) for r in results]
    content: dict[str, Any] = {"model": gate.model, "version": gate.version,
                               "request_id": request_id}  # fmt: skip
    content |= {"answer": answers[0]} if body.input is not None else {"answers": answers}
    return JSONResponse(content, headers={"x-request-id": request_id})


def _refused(results: list[Result], where: str, gate: Gateway) -> None:
    """413 for the first input the model could not take (its prompt is over the context)."""
    for i, result in enumerate(results):
        if result.error:
            param = where.format(i)
            raise RequestError(413, f"{param}: {result.error}", param, "context_length_exceeded")


def _answer_body(result: Result) -> dict:
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
    return {"output": result.output, "text": result.text, "parsed": result.parsed,
            "parse_error": result.parse_error, "finish_reason": result.finish_reason,
            "usage": usage}  # fmt: skip


async def _chat(gate: Gateway, body: openai_api.ChatRequest, request: Request):
    request_id, started = uuid.uuid4().hex, time.perf_counter()
    inputs: list[dict] = []
    try:
        _check_model(gate, body.model)
        fields, where, whole = body.task_input(gate.package.task_form)
        inputs = [gate.package.clean(fields, where, whole)]
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        max_tokens = gate.max_tokens(body.max_completion_tokens or body.max_tokens, param)
        item = Item(inputs[0], max_tokens)
        if body.stream:
            return await _stream(gate, body, item, request_id, started)
        async with gate.admit():
            results = await gate.backend.complete([item])
        _refused(results, where, gate)
    except RequestError as err:
        gate.record("chat", request_id, started, err.status, inputs, error=err.message)
        raise
    gate.record("chat", request_id, started, 200, inputs, results)
    body_out = openai_api.completion(request_id, gate.model, results[0], body.wants_json())
    return JSONResponse(body_out, headers={"x-request-id": request_id})


async def _stream(gate: Gateway, body: openai_api.ChatRequest, item: Item, request_id: str,
                  started: float) -> StreamingResponse:  # fmt: skip
    """Server-sent events: the role, the text as generated (in JSON mode, the whole object
    at the end), the finish reason, usage when asked, then [DONE]."""
    context = gate.admit()
    await context.__aenter__()  # the place is held until the stream ends
    json_mode = body.wants_json()

    async def events() -> AsyncIterator[str]:
        status, result, error = 200, Result(), ""
        try:
            yield openai_api.chunk(request_id, gate.model, {"role": "assistant", "content": ""})
            async for piece in gate.backend.stream(item):
                if isinstance(piece, Result):
                    result = piece
                elif not json_mode:
                    yield openai_api.chunk(request_id, gate.model, {"content": piece})
            if result.error:
                status, error = 413, result.error
                yield openai_api.sse(openai_api.error_body(413, error, "messages"))
            else:
                if json_mode:
                    text = openai_api.content(result, True)
                    yield openai_api.chunk(request_id, gate.model, {"content": text})
                yield openai_api.chunk(request_id, gate.model, {}, result.finish_reason,
                                       llmops=openai_api.extra(result))  # fmt: skip
                if body.stream_options and body.stream_options.include_usage:
                    yield openai_api.sse({"id": f"chatcmpl-{request_id}",
                                          "object": "chat.completion.chunk",
                                          "model": gate.model, "choices": [],
                                          "usage": openai_api.usage(result)})  # fmt: skip
            yield openai_api.DONE
        except Exception as err:  # after the headers went out: an error event, then the end
            log.exception("stream %s failed", request_id)
            status, error = 500, f"generation failed: {type(err).__name__}"
            yield openai_api.sse(openai_api.error_body(500, error))
            yield openai_api.DONE
        finally:
            await context.__aexit__(None, None, None)
            gate.record("chat", request_id, started, status, [item.inputs],
                        [result] if not error else [], error)  # fmt: skip

    headers = {"x-request-id": request_id, "cache-control": "no-cache"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _feedback(gate: Gateway, body: FeedbackRequest) -> dict:
    if not gate.requests.known(body.request_id):
        message = f"request_id: no request {body.request_id!r} in the request log"
        raise RequestError(404, message, "request_id", "request_not_found")
    correction = None
    if body.correction is not None:
        correction = _correction(gate, body.correction)
    comment = gate.package.redact_text(body.comment) if body.comment else ""
    line = {"request_id": body.request_id, "rating": body.rating, "correction": correction,
            "comment": comment, "model": gate.model, "version": gate.version}  # fmt: skip
    gate.requests.feedback(line)
    return {"request_id": body.request_id, "recorded": True}


def _correction(gate: Gateway, correction: dict[str, str]) -> dict[str, str]:
    """A corrected answer: known output fields, labels from their values, texts cleaned."""
    task, out = gate.package.task_form, {}
    names = [f.name for f in task.outputs]
    for name, value in correction.items():
        param = f"correction.{name}"
        if name not in names:
            raise RequestError(422, f"{param}: not an output field; expected {names}", param)
        f = task.field(name)
        if f.is_label and value not in f.values:
            raise RequestError(422, f"{param}: {value!r} not in {list(f.values)}", param)
        if not f.is_label and len(value) > f.max_chars:
            raise RequestError(413, f"{param}: {len(value)} characters, at most {f.max_chars}",
                               param)  # fmt: skip
        out[name] = value if f.is_label else gate.package.redact_text(value)
    return out


def _errors(app: FastAPI, gate: Gateway) -> None:
    """Every error as OpenAI's body; a body too large is refused before it is parsed."""

    def respond(status: int, message: str, param: str | None = None, code: str = ""):
        headers = {"retry-after": str(gate.serve.retry_after_s)} if status == 503 else None
        body = openai_api.error_body(status, message, param, code)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        return respond(err.status, err.message, err.param, err.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        gate.telemetry.observe("invalid", 422, 0.0, [])
        return respond(422, f"{param or 'body'}: {first.get('msg')}", param, "invalid_value")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return respond(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return respond(500, "internal error; see the server log")

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > gate.max_body_bytes:
            return respond(413, f"request body of {size} bytes, at most {gate.max_body_bytes}")
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            return respond(415, "expected Content-Type: application/json")
        return await call_next(request)
