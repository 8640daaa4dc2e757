"""What every route of the API shares (llmops.serve.api): the package, the backend that
generates, the limits, the API key, the request log and the metrics.

    ctx = ApiContext(package, backend, params.serve, RequestLog(Path("logs"), params.serve.logs),
                   "name", "v1")
    with ctx.admit():          # one of serve.max_queue places, else RequestError(503)
        results = await ctx.backend.complete(items)
    ctx.record("answer", request_id, started, 200, inputs, results)
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from llmops.config.params import ServeParams
from llmops.serve.requestlog import RequestLog
from llmops.serve.runtime import Package, RequestError, Result
from llmops.serve.telemetry import Telemetry


class Bucket:
    """A token bucket: `take()` is true at most `rate` times a second on average, in bursts
    of at most max(1, rate); never for a rate of 0."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.size, self.clock = rate, max(1.0, rate) if rate else 0.0, clock
        self.tokens, self.at = self.size, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Place:
    """A place among the requests in flight; released once, however often asked."""

    def __init__(self, ctx: ApiContext):
        self.ctx, self.released = ctx, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.ctx.in_flight -= 1
            self.ctx.telemetry.in_flight.set(self.ctx.in_flight)


@dataclass
class ApiContext:
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
    refusals: Bucket = field(init=False)  # refused requests that may still be logged

    def __post_init__(self) -> None:
        self.refusals = Bucket(self.serve.logs.refusals_per_s)

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
            raise RequestError(
                401,
                "missing or wrong API key (Authorization: Bearer <key>)",
                code="invalid_api_key",
            )

    def take(self) -> Place:
        """One of `serve.max_queue` places, or a 503."""
        if self.in_flight >= self.serve.max_queue:
            self.telemetry.rejected.inc()
            raise RequestError(503, f"overloaded: {self.in_flight} requests in flight; retry")
        self.in_flight += 1
        self.telemetry.in_flight.set(self.in_flight)
        return Place(self)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place while the block runs."""
        place = self.take()
        try:
            yield
        finally:
            place.release()

    def max_tokens(self, asked: int | None, param: str = "max_tokens") -> int:
        if asked is None:
            return self.package.decoding.max_new_tokens
        if asked > self.serve.max_tokens:
            message = f"{param}: {asked} is more than this service allows ({self.serve.max_tokens})"
            raise RequestError(400, message, param)
        return asked

    def record(
        self,
        endpoint: str,
        request_id: str,
        started: float,
        status: int,
        inputs: list[dict] | None = None,
        results: list[Result] | None = None,
        error: str = "",
    ) -> None:
        """The metrics of one finished request, and its request-log line. A refused request
        (`error`) is logged without its inputs, its error text redacted; one without a valid
        API key (401), or a client error (4xx) past `serve.logs.refusals_per_s`, is counted
        but not logged, so clients without a key cannot grow the disk. Server errors (5xx)
        are always logged."""
        seconds = time.perf_counter() - started
        results = results or []
        self.telemetry.observe(endpoint, status, seconds, results)
        refused = error and status < 500
        if refused and (status == 401 or not self.refusals.take()):
            self.telemetry.unlogged.inc()
            return
        if error:
            inputs, error = None, self.package.redact_text(error)
        self.requests.request(
            {
                "request_id": request_id,
                "endpoint": endpoint,
                "model": self.model,
                "version": self.version,
                "status": status,
                "latency_ms": round(1000 * seconds, 1),
                "inputs": inputs or [],
                "outputs": [self._logged(r) for r in results],
                "prompt_tokens": sum(r.prompt_tokens for r in results),
                "completion_tokens": sum(r.completion_tokens for r in results),
                "error": error,
            }
        )

    def _logged(self, result: Result) -> dict:
        redact = self.package.redact_text
        output = {k: v if v is None else redact(v) for k, v in result.output.items()}
        return {
            "output": output,
            "text": redact(result.text),
            "parsed": result.parsed,
            "finish_reason": result.finish_reason,
        }
