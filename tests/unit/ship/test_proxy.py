"""The deploy proxy (llmops.ship.proxy) in front of small real backends, all under uvicorn on
loopback in this process: it forwards requests unchanged, relays streams as they come,
follows the state file and answers OpenAI's error body when it has no backend."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from llmops.ship.localserver import free_port
from llmops.ship.proxy import STATUS_PATH, app

ERROR_KEYS = {"message", "type", "param", "code"}
STEP_S = 0.6  # between the events of the backend's stream


class Backend:
    """A backend that echoes what it was sent, named so a test sees which one answered."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def echo(self, request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        return JSONResponse(
            {"backend": self.name, "method": request.method,
             "raw_path": request.scope["raw_path"].decode(), "query": request.url.query,
             "headers": dict(request.headers), "body": body},
            headers={"x-backend": self.name},
        )  # fmt: skip

    async def events(self, request: Request) -> StreamingResponse:
        async def lines() -> AsyncIterator[str]:
            for i in range(3):
                yield f"data: {self.name} {i}\n\n"
                await asyncio.sleep(STEP_S)

        return StreamingResponse(lines(), media_type="text/event-stream")

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(routes=[Route("/stream", self.events, methods=["GET"]),
                                 Route("/{path:path}", self.echo, methods=methods)])  # fmt: skip


@contextmanager
def serving(asgi) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port in a thread; yield its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def point(state: Path, url: str | None) -> None:
    """Write the deploy state as llmops.ship.deploy does: a temporary file renamed over it."""
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"active": {"url": url} if url else None}))
    os.replace(tmp, state)


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[str, str]]:
    with serving(Backend("blue").app()) as blue, serving(Backend("green").app()) as green:
        yield blue, green


@pytest.fixture
def proxy(tmp_path) -> Iterator[tuple[str, Path]]:
    state = tmp_path / "local.json"
    with serving(app(state)) as url:
        yield url, state


def test_no_backend_is_503_with_openai_error_body(proxy):
    url, _ = proxy
    r = httpx.post(f"{url}/v1/answer", json={"input": {}})
    assert r.status_code == 503
    assert r.json()["error"].keys() == ERROR_KEYS
    assert r.json()["error"]["type"] == "server_error"
    assert httpx.get(f"{url}{STATUS_PATH}").json() == {"backend": None, "inflight": {}}


def test_forwards_method_path_query_headers_and_body(proxy, backends):
    url, state = proxy
    point(state, backends[0])
    sent = '{"input": {"text": "hi"}}'
    r = httpx.put(f"{url}/v1/a%2Fb?x=1&y=%20z", content=sent,
                  headers={"Authorization": "Bearer k", "Content-Type": "application/json",
                           "X-Custom": "kept", "Keep-Alive": "timeout=5"})  # fmt: skip
    assert r.status_code == 200 and r.headers["x-backend"] == "blue"
    echo = r.json()
    assert (echo["method"], echo["raw_path"], echo["query"]) == ("PUT", "/v1/a%2Fb", "x=1&y=%20z")
    assert echo["body"] == sent
    assert echo["headers"]["authorization"] == "Bearer k"
    assert echo["headers"]["x-custom"] == "kept"
    assert "keep-alive" not in echo["headers"]  # hop-by-hop: the client's connection's only
    assert echo["headers"]["host"] == backends[0].removeprefix("http://")


def test_streams_are_relayed_as_they_come(proxy, backends):
    url, state = proxy
    point(state, backends[0])
    started = time.monotonic()
    arrived = []
    with httpx.stream("GET", f"{url}/stream") as r:
        for line in r.iter_lines():
            if line:
                arrived.append((line, time.monotonic() - started))
    assert [line for line, _ in arrived] == [f"data: blue {i}" for i in range(3)]
    # unbuffered: the events arrive spread out as the backend writes them (a buffered relay
    # would deliver all three together, after 3 * STEP_S); loose bounds for a busy machine
    first, last = arrived[0][1], arrived[-1][1]
    assert first < 2 * STEP_S and last - first > 1.5 * STEP_S, arrived


def test_follows_the_state_file_and_counts_requests_in_flight(proxy, backends):
    url, state = proxy
    blue, green = backends
    point(state, blue)
    assert httpx.get(f"{url}/who").json()["backend"] == "blue"
    with httpx.Client() as client, client.stream("GET", f"{url}/stream") as stream:
        point(state, green)  # while a stream from blue is still running
        assert client.get(f"{url}/who").json()["backend"] == "green"
        assert client.get(f"{url}{STATUS_PATH}").json() == {"backend": green,
                                                            "inflight": {blue: 1}}  # fmt: skip
        assert [x for x in stream.iter_lines() if x][-1] == "data: blue 2"  # finished on blue
    assert httpx.get(f"{url}{STATUS_PATH}").json() == {"backend": green, "inflight": {}}
    point(state, None)
    assert httpx.get(f"{url}/who").status_code == 503


def test_an_unreachable_backend_is_502_with_openai_error_body(proxy):
    url, state = proxy
    point(state, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    r = httpx.get(f"{url}/v1/models")
    assert r.status_code == 502
    assert r.json()["error"].keys() == ERROR_KEYS
    assert httpx.get(f"{url}{STATUS_PATH}").json()["inflight"] == {}
