"""What a request to the API must pass before a route reads it: ASGI middleware.

    app.add_middleware(Intake, ctx=ctx, refuse=respond)   # llmops.serve.api_errors installs it

In this order: the API key (401; the OpenAPI schema and the docs pages are open), a stated
Content-Length over `ApiContext.max_body_bytes` (413), a POST whose Content-Type is not
`application/json` (415), then the body itself, read here in full: refused with 413 as
soon as it passes the limit however it is sent (chunked bodies state no length), and with
408 when it has not all arrived within `serve.timeouts.body_s`. The route then reads the
body from memory. The time the request arrived is kept in the scope's state (`started`),
so a refusal is logged with its real latency; `refuse(request, error)` answers it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from llmops.serve.context import ApiContext
from llmops.serve.runtime import RequestError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
JSON = "application/json"


class ClientGoneError(Exception):
    """The client closed the connection before its body arrived: nobody to answer."""


class Intake:
    """Checks the API key, the body's type and size, and reads the body with a deadline."""

    def __init__(
        self,
        app: Any,
        ctx: ApiContext,
        refuse: Callable[[Request, RequestError], Response],
        open_paths: tuple[str, ...] = (),
    ):
        self.app, self.ctx, self.refuse = app, ctx, refuse
        self.open_paths = frozenset(p for p in open_paths if p)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["started"] = time.perf_counter()
        request = Request(scope)
        try:
            if _route_path(scope) not in self.open_paths:
                self.ctx.authorize(request)
            self._check_head(request)
            body = await self._read(receive)
        except ClientGoneError:
            return
        except RequestError as err:
            await self.refuse(request, err)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_head(self, request: Request) -> None:
        limit, size = self.ctx.max_body_bytes, request.headers.get("content-length", "")
        if size.isdigit() and int(size) > limit:
            raise RequestError(413, f"request body of {size} bytes, at most {limit}")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if request.method == "POST" and media != JSON:
            raise RequestError(415, f"expected Content-Type: {JSON}", code="unsupported_media")

    async def _read(self, receive: Receive) -> bytes:
        """The whole body, or 413 once it passes the limit, or 408 past the deadline."""
        limit, deadline = self.ctx.max_body_bytes, self.ctx.serve.timeouts.body_s
        body = bytearray()
        try:
            with anyio.fail_after(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGoneError
                    body += message.get("body", b"")
                    if len(body) > limit:
                        raise RequestError(413, f"request body over {limit} bytes")
                    if not message.get("more_body", False):
                        return bytes(body)
        except TimeoutError:
            message = f"the request body did not arrive within {deadline:g} s"
            raise RequestError(408, message, code="timeout") from None


def _route_path(scope: Scope) -> str:
    """The path below the mount point (/v1)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read here, then the connection's own messages (a
    streamed answer listens for the client leaving)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
