"""The stable endpoint of a local deployment: a reverse proxy to the active backend.

Run: python -m llmops.ship.proxy --port 3000 --state .deploy/local.json
(`start(port, state, log)` runs that detached; `status(port)` asks a running one.)

`python -m llmops.ship.deploy local` starts it (detached) and switches it from one server to the
next by rewriting the state file (JSON, replaced atomically); the proxy re-reads the file
when it changes (inode, mtime or size; checked on each request) and sends every request
after that to the new backend (`active.url`). It listens on 127.0.0.1 only.

It forwards the method, path, query, headers and body, and relays the answer as it arrives
(server-sent events are not buffered). It adds nothing (no auth: the backend does that)
and answers only one path itself: GET /_proxy/status, the backend in use and the requests
in flight per backend, which the deploy polls to know the switch is done and the old
server drained. With no active backend it answers 503, and 502 when the backend cannot be
reached, with OpenAI's error body.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from llmops.serve.openai_api import error_body
from llmops.ship.detached import spawn, tail, wait_until

log = logging.getLogger(__name__)
STATUS_PATH = "/_proxy/status"
# Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the message's; `host` is
# the proxy's own. httpx and uvicorn frame the forwarded bodies themselves.
HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # as long as the service's own (service.py)


def hop(name: bytes) -> bool:
    return name.decode("latin-1").lower() in HOP


def backend_url(state: dict) -> str | None:
    """The active backend's URL in a deploy state, or None."""
    active = state.get("active") or {}
    return active.get("url") or None


class Backend:
    """The active backend as the state file says, re-read when the file changes."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.seen: tuple[int, int, int] | None = None
        self.url: str | None = None

    def current(self) -> str | None:
        try:
            st = os.stat(self.state)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self.seen:
            self.seen = seen
            try:
                self.url = backend_url(json.loads(self.state.read_text(encoding="utf-8")))
            except FileNotFoundError:
                self.url = None
            except (OSError, ValueError) as err:  # keep the last good backend
                log.warning("cannot read %s (%s); still using %s", self.state, err, self.url)
            log.info("backend: %s", self.url)
        return self.url


class Relayed(Response):
    """The backend's response, sent on as it arrives; `done` runs when it ends, however."""

    def __init__(self, upstream: httpx.Response, done: Callable[[], None]) -> None:
        self.upstream = upstream
        self.done = done
        self.status_code = upstream.status_code
        self.raw_headers = [(k, v) for k, v in upstream.headers.raw if not hop(k)]
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send(start | {"headers": self.raw_headers})
            async for chunk in self.upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.upstream.aclose()
            self.done()


def target(scope: Scope) -> str:
    """The request's path and query as the client sent them (percent-escapes kept)."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def error(status: int, message: str, code: str) -> JSONResponse:
    body = error_body(503, message, None, code)  # 503's type, server_error, for any 5xx
    return JSONResponse(body, status_code=status)


class Proxy:
    """The proxy's routes, its HTTP client and its count of requests in flight."""

    def __init__(self, state: Path) -> None:
        self.backend = Backend(state)
        self.inflight: Counter[str] = Counter()
        self.client: httpx.AsyncClient | None = None

    async def status(self, request: Request) -> JSONResponse:
        busy = {url: n for url, n in self.inflight.items() if n}
        return JSONResponse({"backend": self.backend.current(), "inflight": busy})

    async def forward(self, request: Request) -> Response:
        url = self.backend.current()
        if url is None or self.client is None:
            return error(503, "no backend is deployed behind this address", "no_backend")
        headers = [(k, v) for k, v in request.headers.raw if not hop(k)]
        framed = "content-length" in request.headers or "transfer-encoding" in request.headers
        outgoing = self.client.build_request(
            request.method,
            url + target(request.scope),
            headers=headers,
            content=request.stream() if framed else None,
        )
        self.inflight[url] += 1  # counted from here, so none is missed by the drain
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as err:
            self.inflight[url] -= 1
            log.warning("%s %s: %s: %s", request.method, url, type(err).__name__, err)
            return error(502, f"the backend did not answer ({type(err).__name__})", "bad_gateway")
        except BaseException:  # e.g. the client went away mid-upload: not counted any more
            self.inflight[url] -= 1
            raise
        return Relayed(upstream, lambda: self.inflight.subtract([url]))

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            self.client = client
            yield
        self.client = None


def app(state: Path) -> Starlette:
    """The proxy as an ASGI app, following the backend named in `state`."""
    proxy = Proxy(state)
    routes = [
        Route(STATUS_PATH, proxy.status, methods=["GET"]),
        Route("/{path:path}", proxy.forward, methods=METHODS),
    ]
    return Starlette(routes=routes, lifespan=proxy.lifespan)


def status(port: int) -> dict | None:
    """GET /_proxy/status of the proxy on 127.0.0.1:`port`, or None when none answers."""
    try:
        r = httpx.get(f"http://127.0.0.1:{port}{STATUS_PATH}", timeout=2)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def start(port: int, state: Path, logfile: Path, timeout: float = 30.0) -> subprocess.Popen:
    """Start the proxy detached (`python -m llmops.ship.proxy`); return once it answers."""
    with socket.socket() as probe:  # so a proxy already there is not taken for this one
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise RuntimeError(f"cannot listen on 127.0.0.1:{port}: {err}") from None
    command = [
        sys.executable,
        "-m",
        "llmops.ship.proxy",
        "--port",
        str(port),
        "--state",
        str(state),
    ]
    process = spawn(command, logfile)
    if not wait_until(lambda: process.poll() is not None or status(port), timeout):
        process.kill()
    if process.poll() is not None or status(port) is None:
        process.wait()
        raise RuntimeError(f"the proxy did not start on 127.0.0.1:{port}:\n{tail(logfile)}")
    return process


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="listens on 127.0.0.1:PORT")
    parser.add_argument("--state", type=Path, required=True, help="the deploy state (JSON)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per forwarded request
    # no `server` or `date` header of its own: the backend's pass through, once
    uvicorn.run(
        app(args.state.resolve()),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
