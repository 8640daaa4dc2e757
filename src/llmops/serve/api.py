"""The service's HTTP API (FastAPI, mounted at /v1 by service.py): the routes.

    app = FastAPI()
    install(app, ApiContext(package, backend, params.serve, RequestLog(Path("logs"), ...), ...))

What the routes share (limits, auth, admission, the request log) is `llmops.serve.context`;
error answers are `llmops.serve.api_errors`; streamed chat completions `llmops.serve.streaming`.

Routes (all answer errors with OpenAI's error body, naming the field):
- POST /answer: the task's input fields, `{"input": {...}}` or `{"inputs": [{...}, ...]}`;
  the parsed output fields, the raw text, whether it parsed, token counts, the model.
- POST /chat/completions (non-streaming, or server-sent events ending in [DONE]) and
  GET /models, GET /models/{id}: the OpenAI dialect (`llmops.serve.openai_api`), with lineage.
- POST /feedback: a rating (1-5) and an optional corrected answer for an answered request.
Guards: a bearer API key when one is configured (401), the body's type (415), size (413,
however it is sent) and arrival time (408) (`llmops.serve.intake`), the number of inputs (413),
text UTF-8 cannot encode (422), input length after cleaning (413), `max_tokens` (400), the
body's schema with strict types (422), and at most `serve.max_queue` generation requests
in flight (503 with Retry-After). Every request to /answer, /chat/completions and
/feedback is logged (`llmops.serve.requestlog`): inputs and outputs after redaction; a refused
one without its input, and within `serve.logs.refusals_per_s` (401s are only counted).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# task endpoint's request model is a local variable built from the task.
import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from llmops.serve import openai_api, streaming
from llmops.serve.api_errors import install_errors
from llmops.serve.api_models import ERRORS, AnswerRequest, FeedbackRequest, task_models
from llmops.serve.context import ApiContext
from llmops.serve.runtime import Item, RequestError, Result, encodable, label

log = logging.getLogger(__name__)
# One server-sent event (`itemSchema`, as OpenAPI 3.2 writes it): its data is a
# chat.completion.chunk as JSON, the last one `[DONE]`.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
CHAT_RESPONSES = {
    200: {
        "description": "A chat completion, or with `stream: true` server-sent events",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"itemSchema": SSE_EVENT},
        },
    },
    **ERRORS,
}


def install(app: FastAPI, ctx: ApiContext) -> None:
    """Add the routes and error handlers to `app`."""
    answer_request, answer_response = task_models(ctx.package.task_form)
    # The key is checked by the intake, before any route (`llmops.serve.intake`); the routes
    # declare it so that the OpenAPI schema says they need it.
    bearer = HTTPBearer(auto_error=False, description=f"The API key ({ctx.serve.api_key_env})")
    auth = [Security(bearer)]
    install_errors(app, ctx)

    @app.post("/answer", dependencies=auth, response_model=answer_response, responses=ERRORS)
    async def answer(body: answer_request, request: Request) -> JSONResponse:  # type: ignore[valid-type]
        """Answer one input (`input`) or several (`inputs`) of the task."""
        return await _answer(ctx, body, request)

    @app.post("/chat/completions", dependencies=auth, responses=CHAT_RESPONSES)
    async def chat(body: openai_api.ChatRequest, request: Request):
        """OpenAI chat completion: the last user message is the task's input."""
        return await _chat(ctx, body, request)

    @app.get("/models", dependencies=auth, responses=ERRORS)
    async def models() -> dict:
        """The served model, with its lineage (OpenAI's model list)."""
        return {"object": "list", "data": [_model_card(ctx)]}

    @app.get("/models/{model_id:path}", dependencies=auth, responses=ERRORS)
    async def model(model_id: str) -> dict:
        """One model by id."""
        _check_model(ctx, model_id, "model_id")
        return _model_card(ctx)

    @app.post("/feedback", dependencies=auth, status_code=201, responses=ERRORS)
    async def feedback(body: FeedbackRequest) -> dict:
        """Record a rating and an optional corrected answer for an answered request."""
        request_id, started = uuid.uuid4().hex, time.perf_counter()
        try:
            recorded = _feedback(ctx, body)
        except Exception as err:
            _failed(ctx, "feedback", request_id, started, err)
            raise
        ctx.record("feedback", request_id, started, 201)
        return recorded


def _model_card(ctx: ApiContext) -> dict:
    created = ctx.package.lineage.get("created", 0)
    return {
        "id": ctx.model,
        "object": "model",
        "created": created,
        "owned_by": "llmops",
        "version": ctx.version,
        "lineage": ctx.package.lineage,
    }


def _check_model(ctx: ApiContext, name: str, param: str = "model") -> None:
    if name not in (ctx.model, ctx.version, f"{ctx.model}:{ctx.version}"):
        message = f"{param}: not a model served here; this service serves {ctx.model!r}"
        raise RequestError(404, message, param, "model_not_found")


async def _answer(ctx: ApiContext, body: AnswerRequest, request: Request) -> JSONResponse:
    request_id, started = uuid.uuid4().hex, time.perf_counter()
    inputs: list[dict] = []
    try:
        raw = [body.input] if body.input is not None else body.inputs or []
        if len(raw) > ctx.serve.max_items:
            message = f"inputs: {len(raw)} inputs, at most {ctx.serve.max_items} per request"
            raise RequestError(413, message, "inputs", "too_many_inputs")
        where = "input" if body.input is not None else "inputs[{}]"
        inputs = [ctx.package.clean(r.model_dump(), where.format(i)) for i, r in enumerate(raw)]
        max_tokens = ctx.max_tokens(body.max_tokens)
        with ctx.admit():
            results = await ctx.backend.complete([Item(x, max_tokens) for x in inputs])
        _refused(results, where, ctx)
    except Exception as err:
        _failed(ctx, "answer", request_id, started, err)
        raise
    ctx.record("answer", request_id, started, 200, inputs, results)
    answers = [_answer_body(r) for r in results]
    content: dict[str, Any] = {"model": ctx.model, "version": ctx.version, "request_id": request_id}
    content |= {"answer": answers[0]} if body.input is not None else {"answers": answers}
    return JSONResponse(content, headers={"x-request-id": request_id})


def _failed(ctx: ApiContext, endpoint: str, request_id: str, started: float, err: Exception):
    """Log a request that failed (a refusal, or an error: 500) and mark the error logged."""
    status = err.status if isinstance(err, RequestError) else 500
    message = err.message if isinstance(err, RequestError) else f"{type(err).__name__}"
    ctx.record(endpoint, request_id, started, status, error=message)
    err.logged = True  # type: ignore[attr-defined]


def _refused(results: list[Result], where: str, ctx: ApiContext) -> None:
    """The error of the first input the model could not answer (`Result.refusal`)."""
    for i, result in enumerate(results):
        if refused := result.refusal(where.format(i)):
            raise refused


def _answer_body(result: Result) -> dict:
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
    return {
        "output": result.output,
        "text": result.text,
        "parsed": result.parsed,
        "parse_error": result.parse_error,
        "finish_reason": result.finish_reason,
        "usage": usage,
    }


async def _chat(ctx: ApiContext, body: openai_api.ChatRequest, request: Request):
    request_id, started = uuid.uuid4().hex, time.perf_counter()
    inputs: list[dict] = []
    try:
        _check_model(ctx, body.model)
        fields, where, whole = body.task_input(ctx.package.task_form)
        inputs = [ctx.package.clean(fields, where, whole)]
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        max_tokens = ctx.max_tokens(body.max_completion_tokens or body.max_tokens, param)
        item = Item(inputs[0], max_tokens)
        if body.stream:
            return await streaming.stream(ctx, body, item, request_id, started)
        with ctx.admit():
            results = await ctx.backend.complete([item])
        _refused(results, where, ctx)
    except Exception as err:
        _failed(ctx, "chat", request_id, started, err)
        raise
    ctx.record("chat", request_id, started, 200, inputs, results)
    body_out = openai_api.completion(request_id, ctx.model, results[0], body.wants_json())
    return JSONResponse(body_out, headers={"x-request-id": request_id})


def _feedback(ctx: ApiContext, body: FeedbackRequest) -> dict:
    if not ctx.requests.known(body.request_id):
        window = ctx.serve.logs.feedback_window
        message = f"request_id: not one of the latest {window} answered requests"
        raise RequestError(404, message, "request_id", "request_not_found")
    correction = None
    if body.correction is not None:
        correction = _correction(ctx, body.correction)
    comment = ""
    if body.comment:
        comment = ctx.package.redact_text(encodable(body.comment, "comment"))
    line = {
        "request_id": body.request_id,
        "rating": body.rating,
        "correction": correction,
        "comment": comment,
        "model": ctx.model,
        "version": ctx.version,
    }
    ctx.requests.feedback(line)
    return {"request_id": body.request_id, "recorded": True}


def _correction(ctx: ApiContext, correction: dict[str, str]) -> dict[str, str]:
    """A corrected answer: known output fields, labels from their values, texts cleaned."""
    task, out = ctx.package.task_form, {}
    names = [f.name for f in task.outputs]
    for name, value in correction.items():
        param = f"correction.{encodable(name, 'correction')}"
        encodable(value, param)
        if name not in names:
            raise RequestError(422, f"{param}: not an output field; expected {names}", param)
        f = task.field(name)
        if f.is_label:
            out[name] = label(f, value, param)
            continue
        if len(value) > f.max_chars:
            raise RequestError(
                413, f"{param}: {len(value)} characters, at most {f.max_chars}", param
            )
        out[name] = ctx.package.redact_text(value)
    return out
