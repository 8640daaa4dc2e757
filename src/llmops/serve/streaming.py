"""A chat completion as server-sent events (`stream: true`), for llmops.serve.api.

The generation starts before the response does, so a prompt over the model's context is
still a plain 413; then the role, the text as it comes (in JSON mode the whole object at
the end), the finish reason, the usage when asked, and [DONE]. The request's place among
those in flight is held until the response ends, and released, the request logged and the
generation stopped also when the client goes away first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from llmops.serve import openai_api
from llmops.serve.context import ApiContext
from llmops.serve.runtime import Item, Result

log = logging.getLogger(__name__)


class ClosingStream(StreamingResponse):
    """A streaming response that runs `on_close` when it ends, however it ends."""

    def __init__(self, content: AsyncIterator[str], on_close, **kwargs):
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.on_close()


async def stream(
    ctx: ApiContext, body: openai_api.ChatRequest, item: Item, request_id: str, started: float
) -> StreamingResponse:
    """The response; raises RequestError (413) when the prompt does not fit."""
    place = ctx.take()
    pieces = ctx.backend.stream(item)
    try:
        first = await anext(pieces)
    except BaseException:
        place.release()
        await pieces.aclose()
        raise
    if isinstance(first, Result) and (refused := first.refusal("messages")):
        place.release()
        await pieces.aclose()
        raise refused
    state = {"status": 499, "result": Result(), "error": "client closed the stream"}
    events = _events(ctx, body, request_id, first, pieces, state)

    async def close() -> None:
        await events.aclose()
        await pieces.aclose()  # stops the generation if the client left early
        place.release()
        result = [state["result"]] if state["status"] == 200 else []
        ctx.record(
            "chat",
            request_id,
            started,
            state["status"],
            [item.inputs],
            result,
            "" if state["status"] == 200 else state["error"],
        )

    headers = {"x-request-id": request_id, "cache-control": "no-cache"}
    return ClosingStream(events, close, media_type="text/event-stream", headers=headers)


async def _events(ctx, body, request_id, first, pieces, state) -> AsyncIterator[str]:
    json_mode, model = body.wants_json(), ctx.model
    result = Result()
    try:
        yield openai_api.chunk(request_id, model, {"role": "assistant", "content": ""})
        piece = first
        while True:
            if isinstance(piece, Result):
                result = piece
            elif not json_mode:
                yield openai_api.chunk(request_id, model, {"content": piece})
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                break
        if json_mode:
            yield openai_api.chunk(request_id, model, {"content": openai_api.content(result, True)})
        yield openai_api.chunk(
            request_id, model, {}, result.finish_reason, llmops=openai_api.extra(result)
        )
        if body.stream_options and body.stream_options.include_usage:
            yield openai_api.sse(
                {
                    "id": f"chatcmpl-{request_id}",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": openai_api.usage(result),
                }
            )
        yield openai_api.DONE
        state.update(status=200, result=result)
    except Exception as err:  # after the headers went out: an error event, then the end
        log.exception("stream %s failed", request_id)
        state.update(status=500, error=f"generation failed: {type(err).__name__}")
        yield openai_api.sse(openai_api.error_body(500, state["error"]))
        yield openai_api.DONE
