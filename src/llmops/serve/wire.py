"""The generator service's side of serving: its wire format and the API's client of it.

service.py's `Generator` holds a `llmops.serve.runtime.ModelThread` and answers with
`complete_wire` (BentoML batches concurrent calls) and `stream_wire`; its `Api` reaches it
through `RemoteBackend`, which the routes use like any backend (`complete`, `stream`).
Items and results travel as dicts, a stream as JSON lines ({"text": piece} ... then
{"result": {...}}).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from llmops.serve.runtime import Item, ModelThread, RequestError, Result

log = logging.getLogger(__name__)


async def complete_wire(model: ModelThread, items: list[dict]) -> list[dict]:
    return [r.to_dict() for r in await model.complete([Item(**i) for i in items])]


async def stream_wire(model: ModelThread, item: dict):
    async for piece in model.stream(Item(**item)):
        body = {"text": piece} if isinstance(piece, str) else {"result": piece.to_dict()}
        yield json.dumps(body, ensure_ascii=False) + "\n"


async def ready(client: Any, seconds: float) -> bool:
    """Whether the generator (a `bentoml.depends` client) says it is ready within `seconds`:
    a probe that errs or hangs is an answer, not ready, with the reason logged."""
    import anyio

    try:
        with anyio.fail_after(seconds):
            return bool(await client.is_ready(max(1, round(seconds))))
    except Exception as err:
        log.warning("the generator is not ready: %s", f"{type(err).__name__}: {err}"[:300])
        return False


class RemoteBackend:
    """Answers through the generator service (a `bentoml.depends` client)."""

    def __init__(self, client: Any):
        self.client = client

    async def complete(self, items: list[Item]) -> list[Result]:
        wire = [asdict(i) for i in items]
        for attempt in (1, 2):  # a dropped connection is retried once: generation is pure
            try:
                out = await self.client.to_async.complete(wire)
                break
            except Exception as err:
                if attempt == 1 and _dropped(err):
                    continue
                raise _unavailable(err) from err
        return [Result(**r) for r in out]

    async def stream(self, item: Item):
        buffer = ""
        chunks = self.client.to_async.stream(item=asdict(item))
        try:
            async for chunk in chunks:
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in filter(None, lines):
                    body = json.loads(line)
                    yield body["text"] if "text" in body else Result(**body["result"])
        except Exception as err:
            raise _unavailable(err) from err
        finally:  # closing the connection ends the generation on the other side
            if hasattr(chunks, "aclose"):
                await chunks.aclose()


def _dropped(err: BaseException) -> bool:
    """A connection to the generator that broke (aiohttp's connection errors, or BentoML's
    wrapping of them), as opposed to an answer from it."""
    import aiohttp

    while err is not None:
        if isinstance(err, aiohttp.ClientConnectionError | ConnectionError):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def _unavailable(err: Exception) -> Exception:
    """The generator's overload (BentoML's 503) or a broken connection to it as a 503 for
    the client (retry later); other errors stay errors."""
    status = getattr(getattr(err, "error_code", None), "value", None)
    if status in (429, 503):
        return RequestError(503, "overloaded: the generator is busy; retry")
    if _dropped(err):
        return RequestError(503, "the generator did not answer; retry", code="unavailable")
    return err
