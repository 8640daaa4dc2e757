"""The API's error answers: every error as OpenAI's body naming the field, a body too
large or not JSON refused before it is parsed, and every refused request logged (without
its input) and counted."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llmops import openai_api
from llmops.gateway import Gateway
from llmops.serving import RequestError

log = logging.getLogger(__name__)


# The request log's endpoint names, by the route's path (below the mount point).
ENDPOINTS = {"/answer": "answer", "/chat/completions": "chat", "/feedback": "feedback"}


def endpoint(request: Request) -> str:
    path = request.url.path
    return next((name for end, name in ENDPOINTS.items() if path.endswith(end)), "other")


def install_errors(app: FastAPI, gate: Gateway) -> None:
    """Every error as OpenAI's body; a body too large is refused before it is parsed."""

    def respond(request: Request, err: Exception | None, status: int, message: str,
                param: str | None = None, code: str = "") -> JSONResponse:  # fmt: skip
        if err is None or not getattr(err, "logged", False):  # the routes log their own
            gate.record(endpoint(request), uuid.uuid4().hex, time.perf_counter(), status,
                        error=message)  # fmt: skip
        headers = {"retry-after": str(gate.serve.retry_after_s)} if status == 503 else None
        body = openai_api.error_body(status, message, param, code)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        return respond(request, err, err.status, err.message, err.param, err.code)

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
        log.exception("unhandled error on %s", request.url.path)
        return respond(request, err, 500, "internal error; see the server log")

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > gate.max_body_bytes:
            message = f"request body of {size} bytes, at most {gate.max_body_bytes}"
            return respond(request, None, 413, message)
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            return respond(request, None, 415, "expected Content-Type: application/json")
        return await call_next(request)
