"""A deadline on a request's headers, so slow clients cannot hold the server's connections.

    slowclients.install(params.serve.timeouts)   # service.py, before the server starts

uvicorn (which `bentoml serve` runs) waits for a request's headers for ever: a client that
sends one byte a second keeps its connection, and a few hundred of them keep the server's.
`install` makes uvicorn serve HTTP/1.1 with `HeaderDeadline`, its h11 protocol plus one
timer: a connection whose request line and headers have not all arrived within
`timeouts.headers_s` of its opening (or of the previous response on it) is answered 408
and closed. A kept-alive connection that sends nothing is closed earlier, silently, after
`timeouts.idle_s` (uvicorn's own keep-alive timeout; params require idle_s < headers_s).
The body has its own deadline (`llmops.serve.intake`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from llmops.config.params import TimeoutsParams

TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 31\r\n"
    b"connection: close\r\n\r\nrequest headers did not arrive\n"
)


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose headers are late."""

    headers_s: float = 10.0
    idle_s: int = 5

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.idle_s
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._in_request():  # no pipelined request started already
            self._arm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm()  # the connection is no longer HTTP: no headers to wait for
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        """Whether a request's headers are in and its response is not yet complete."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.headers_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.write(TIMEOUT)
            self.transport.close()


def install(timeouts: TimeoutsParams) -> None:
    """Serve HTTP with `HeaderDeadline` (uvicorn's "auto" protocol) and these deadlines."""
    from uvicorn import config

    HeaderDeadline.headers_s, HeaderDeadline.idle_s = timeouts.headers_s, timeouts.idle_s
    config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{HeaderDeadline.__name__}"
