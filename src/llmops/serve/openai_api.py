"""The OpenAI chat-completions dialect of the service: request models and response bodies.

The official `openai` client works against the service unchanged:

    client = OpenAI(base_url="http://127.0.0.1:3000/v1", api_key="...")
    client.chat.completions.create(model="llmops-model", messages=[{"role": "user", ...}])

The last user message is the task's input: its text when the task has one text input
field, else a JSON object of the input fields. The answer is the model's JSON text in
`choices[0].message.content`; `llmops` beside it holds the parsed fields. Decoding is the
evaluated one (params.yaml `decoding`): `temperature` and `top_p` are accepted and ignored,
so what is served is what eval measured. Errors use OpenAI's body:
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmops.config.task import Task
from llmops.serve.runtime import RequestError, Result

ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    503: "server_error",
    500: "server_error",
}


def error_body(status: int, message: str, param: str | None = None, code: str = "") -> dict:
    """OpenAI's error body."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or None}}


# Strict types throughout: "10", true and 2.0 are not integers, nor "true" a boolean.
class TextPart(BaseModel):
    model_config = ConfigDict(strict=True)

    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["text", "json_object", "json_schema"]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class ChatRequest(BaseModel):
    """A chat-completions request; other OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)  # ignored: decoding is the evaluated one
    top_p: float | None = Field(None, ge=0, le=1)  # ignored likewise
    user: str | None = None

    def task_input(self, task: Task) -> tuple[dict[str, Any], str, bool]:
        """The last user message as the task's input fields, where it was found, and
        whether the message is the one input field whole (not a JSON object of fields)."""
        if self.n != 1:
            raise RequestError(400, "n: only 1 choice per request is supported", "n")
        if self.response_format and self.response_format.type == "json_schema":
            message = "response_format: json_schema is not supported; use json_object"
            raise RequestError(400, message, "response_format")
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if not users:
            raise RequestError(400, "messages: no message with role 'user'", "messages")
        where = f"messages[{users[-1]}].content"
        text = self.messages[users[-1]].text()
        texts = [f for f in task.inputs if not f.is_label]
        if len(task.inputs) == 1 and texts:
            return {texts[0].name: text}, where, True
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            names = [f.name for f in task.inputs]
            message = f"{where}: expected a JSON object with the fields {names}"
            raise RequestError(400, message, where)
        return value, where, False

    def wants_json(self) -> bool:
        return bool(self.response_format and self.response_format.type == "json_object")


def usage(result: Result) -> dict:
    total = result.prompt_tokens + result.completion_tokens
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": total,
    }


def content(result: Result, json_mode: bool) -> str:
    """The message text: the model's answer; in JSON mode always a JSON object (the parsed
    fields, null where missing, when the model's text is not one)."""
    if not json_mode:
        return result.text
    try:
        if isinstance(json.loads(result.text), dict):
            return result.text
    except ValueError:
        pass
    return json.dumps(result.output, ensure_ascii=False)


def extra(result: Result) -> dict:
    """The `llmops` field: the parsed answer beside the OpenAI fields."""
    return {"output": result.output, "parsed": result.parsed, "parse_error": result.parse_error}


def completion(request_id: str, model: str, result: Result, json_mode: bool) -> dict:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content(result, json_mode)},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(result),
        "llmops": extra(result),
    }


def chunk(request_id: str, model: str, delta: dict, finish: str | None = None, **more) -> str:
    """One server-sent event of a streamed completion."""
    body = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **more,
    }
    return sse(body)


def sse(body: dict | str) -> str:
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return f"data: {data}\n\n"


DONE = sse("[DONE]")
