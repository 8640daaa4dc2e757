"""The API's error answers: every error as OpenAI's body naming the field, every refused
request counted and (within limits, `ApiContext.record`) logged without its input; and the
intake (`llmops.serve.intake`: API key, body type, size and deadline) ahead of the routes."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llmops.serve import openai_api
from llmops.serve.context import ApiContext
from llmops.serve.intake import Intake
from llmops.serve.runtime import RequestError

log = logging.getLogger(__name__)


# The request log's endpoint names, by the route's path (below the mount point).
ENDPOINTS = {"/answer": "answer", "/chat/completions": "chat", "/feedback": "feedback"}


def endpoint(request: Request) -> str:
    path = request.url.path
    return next((name for end, name in ENDPOINTS.items() if path.endswith(end)), "other")


def install_errors(app: FastAPI, ctx: ApiContext) -> None:
    """Every error as OpenAI's body; the intake checks a request before a route reads it."""

    def respond(
        request: Request,
        err: Exception | None,
        status: int,
        message: str,
        param: str | None = None,
        code: str = "",
    ) -> JSONResponse:
        message, param = _text(message), param and _text(param)
        if err is None or not getattr(err, "logged", False):  # the routes log their own
            started = getattr(request.state, "started", time.perf_counter())
            ctx.record(endpoint(request), uuid.uuid4().hex, started, status, error=message)
        headers = {"retry-after": str(ctx.serve.retry_after_s)} if status == 503 else None
        body = openai_api.error_body(status, message, param, code)
        return JSONResponse(body, status_code=status, headers=headers)

    def refuse(request: Request, err: RequestError) -> JSONResponse:
        return respond(request, err, err.status, err.message, err.param, err.code)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        return refuse(request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        message = f"{param or 'body'}: {first.get('msg')}"
        return respond(request, err, 422, message, param, "invalid_value")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return respond(request, err, err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception):
        log.exception("unhandled error on %s", endpoint(request))
        return respond(request, err, 500, "internal error; see the server log")

    open_paths = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(Intake, ctx=ctx, refuse=refuse, open_paths=open_paths)


def _text(value: str) -> str:
    """`value` as UTF-8 can encode it: an error may name a field a client spelled with a
    lone surrogate, and the answer must still be sent."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
