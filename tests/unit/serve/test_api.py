"""The HTTP API in-process (FastAPI's test client over ASGI, the tiny project's real model):
every guard's status and error body, input cleaning and redaction, the request log,
feedback, the OpenAI dialect, and the packaged model answering as eval's path does."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from starlette.testclient import TestClient

from llmops.config.params import load_params
from llmops.model.inference import TaskModel
from llmops.model.tokenised import read_split
from llmops.serve import api, runtime
from llmops.serve.requestlog import RequestLog
from llmops.serve.telemetry import Telemetry
from llmops.ship import bento
from tests.bentos import KEY

PARAMS = "test-params.yaml"
LINEAGE = {"git_commit": "abc", "mlflow_run_id": "run1", "created": 1}


@pytest.fixture(scope="module")
def packaged(project, adapter, tmp_path_factory) -> Path:
    params = load_params(project / "params.yaml")
    out = tmp_path_factory.mktemp("package")
    bento.package(params, project / "models" / "base", adapter, out, LINEAGE)
    shutil.copy(project / "params.yaml", out / PARAMS)  # the service's limits, for make_client
    return out


@pytest.fixture(scope="module")
def worker(packaged):
    model = runtime.ModelThread(packaged, batch_size=8)
    yield model
    model.close()


@pytest.fixture(scope="module")
def served(worker) -> runtime.Served:
    return worker.served


@dataclasses.dataclass
class Client:
    http: TestClient
    ctx: api.ApiContext
    logs: Path
    registry: CollectorRegistry

    def post(self, path: str, body: dict, key: str | None = KEY, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.post(f"/v1{path}", json=body, headers=headers, **kw)

    def lines(self, kind: str = "requests") -> list[dict]:
        return [json.loads(x) for f in sorted(self.logs.glob(f"{kind}-*.jsonl"))
                for x in f.read_text().splitlines()]  # fmt: skip


def make_client(packaged, backend, tmp_path, key=KEY, **serve) -> Client:
    """The API over `backend`, with the test params' limits (`serve` overrides some)."""
    package = runtime.Package.read(packaged)
    registry = CollectorRegistry()
    limits = dataclasses.replace(load_params(packaged / PARAMS).serve, **serve)
    ctx = api.ApiContext(package, backend, limits, RequestLog(tmp_path / "logs", limits.logs), "reviews-model",
                       "v7", api_key=key, telemetry=Telemetry(registry=registry))  # fmt: skip
    root, sub = FastAPI(), FastAPI()
    root.mount("/v1", sub)
    api.install(sub, ctx)
    return Client(TestClient(root), ctx, tmp_path / "logs", registry)


@pytest.fixture
def client(packaged, worker, tmp_path) -> Client:
    return make_client(packaged, worker, tmp_path)


@pytest.fixture(scope="module")
def rows(project) -> list[dict]:
    return read_split(project / "data" / "prepared" / "test.jsonl")


def test_answers_equal_the_eval_path_for_the_same_inputs(client, served, rows, project, adapter):
    # The package (base + adapter + the adapter's template + params' decoding) answers as
    # llmops.model.inference does for eval, batched.
    params = load_params(project / "params.yaml")
    model = TaskModel.load(project / "models" / "base", adapter, served.model.task)
    expected = [a.text for a in model.answer(rows[:5], params.decoding, batch_size=16)]
    r = client.post("/answer", {"inputs": [{"text": row["text"]} for row in rows[:5]]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [a["text"] for a in body["answers"]] == expected
    first = body["answers"][0]
    assert set(first["output"]) == {"topic", "sentiment", "summary"}
    assert first["usage"]["prompt_tokens"] > 0 and first["usage"]["completion_tokens"] > 0
    assert body["model"] == "reviews-model" and body["version"] == "v7"
    assert r.headers["x-request-id"] == body["request_id"]


def test_one_input_gives_one_answer(client, rows):
    r = client.post("/answer", {"input": {"text": rows[0]["text"]}})
    assert r.status_code == 200 and "answer" in r.json() and "answers" not in r.json()


def test_an_unparsable_answer_is_a_result_not_an_error(client, rows):
    r = client.post("/answer", {"input": {"text": rows[0]["text"]}, "max_tokens": 3})
    assert r.status_code == 200
    answer = r.json()["answer"]
    assert answer["parsed"] is False and answer["parse_error"]
    assert answer["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 3
    assert set(answer["output"]) == {"topic", "sentiment", "summary"}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": {}}, 422, "input.text"),
        ({"input": {"text": 5}}, 422, "input.text"),
        ({"input": {"text": "ok", "extra": "x"}}, 422, "input.extra"),
        ({"input": {"text": "   \u200b  "}}, 422, "input.text"),  # empty after cleaning
        ({"inputs": []}, 422, "inputs"),
        ({"input": None}, 422, "input"),
        ({"input": {"text": "a"}, "inputs": [{"text": "b"}]}, 422, None),
        ({"input": {"text": "x" * 401}}, 413, "input.text"),  # max_chars 400 after cleaning
        ({"inputs": [{"text": "a"}, {"text": "b" * 500}]}, 413, "inputs[1].text"),
        ({"inputs": [{"text": f"r{i}"} for i in range(9)]}, 413, "inputs"),  # max_items 8
        ({"input": {"text": "a"}, "max_tokens": 65}, 400, "max_tokens"),  # serve.max_tokens 64
        ({"input": {"text": "a"}, "max_tokens": 0}, 422, "max_tokens"),
    ],
)
def test_guards_answer_with_a_status_and_a_body_naming_the_field(client, body, status, param):
    r = client.post("/answer", body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if param:
        assert param.split(".")[0].split("[")[0] in error["message"]


def test_whitespace_and_invisible_characters_are_cleaned_before_the_length_check(client):
    # 599 characters, 300 once the zero-width spaces are gone (max_chars 400): accepted.
    text = "\u200b".join("ab" * 150) + "   "
    assert len(text) > 400
    assert client.post("/answer", {"input": {"text": text}}).status_code == 200


def test_auth_rejects_a_missing_or_wrong_key_counted_not_logged(client):
    for key in (None, "wrong"):
        r = client.post("/answer", {"input": {"text": "a"}}, key=key)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
    # Before anything else about the request: a keyless non-JSON body or oversized one is 401.
    assert client.http.post("/v1/answer", content=b"x").status_code == 401
    big = b"x" * (client.ctx.max_body_bytes + 1)
    assert client.http.post("/v1/answer", content=big).status_code == 401
    assert client.lines() == []  # keyless clients cannot grow the log
    assert client.registry.get_sample_value("llmops_unlogged_refusals_total") == 4
    series = {"endpoint": "answer", "status": "401"}
    assert client.registry.get_sample_value("llmops_requests_total", series) == 4
    assert client.http.get("/v1/models").status_code == 401
    assert client.http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).is_success
    assert client.http.get("/v1/openapi.json").is_success  # the schema is open


def test_refusals_are_logged_within_the_rate_and_counted_past_it(packaged, worker, tmp_path):
    from llmops.serve.context import Bucket

    c = make_client(packaged, worker, tmp_path)
    c.ctx.refusals = Bucket(3, clock=lambda: 0.0)  # time stands still: 3 tokens in all
    for _ in range(20):
        assert c.post("/answer", {"input": {"txt": "a"}}).status_code == 422
    logged = [x for x in c.lines() if x["status"] == 422]
    assert len(logged) == 3
    assert c.registry.get_sample_value("llmops_unlogged_refusals_total") == 17
    assert all(x["latency_ms"] > 0 for x in logged)  # timed from arrival, not from the refusal


def test_a_chunked_body_over_the_size_limit_is_refused_while_it_is_read(client):
    def chunks():  # a body that states no length, over the limit (TestClient sends it all;
        for _ in range(100):  # test_service_e2e shows a real server stops reading)
            yield b"x" * 65_536

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    r = client.http.post("/v1/answer", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and "over" in r.json()["error"]["message"]


def test_no_key_configured_means_no_auth(packaged, worker, tmp_path):
    open_client = make_client(packaged, worker, tmp_path, key="")
    assert open_client.post("/answer", {"input": {"text": "fine"}}, key=None).status_code == 200


def test_a_body_over_the_size_limit_is_refused_before_parsing(client):
    size = client.ctx.max_body_bytes + 1
    r = client.http.post("/v1/answer", content=b"x" * size,
                         headers={"Authorization": f"Bearer {KEY}",
                                  "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "bytes" in r.json()["error"]["message"]


def test_a_body_that_is_not_json_is_refused(client):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain"}
    assert client.http.post("/v1/answer", content=b"hi", headers=headers).status_code == 415
    for media in ("application/json-patch+json", "text/json", "application/jsonx"):
        headers["Content-Type"] = media
        assert client.http.post("/v1/answer", content=b"{}", headers=headers).status_code == 415
    headers["Content-Type"] = "Application/JSON; charset=utf-8"
    assert client.http.post("/v1/answer", content=b"{}", headers=headers).status_code == 422
    headers["Content-Type"] = "application/json"
    r = client.http.post("/v1/answer", content=b"{not json", headers=headers)
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"


class HeldBackend:
    """A backend that holds every request until released: fills the queue on demand (the
    real generator cannot be paused at a chosen moment)."""

    def __init__(self):
        self.release = asyncio.Event()

    async def complete(self, items):
        await self.release.wait()
        return [runtime.Result(text="{}", prompt_tokens=1) for _ in items]


def test_overload_is_a_503_with_retry_after_not_an_endless_queue(packaged, tmp_path):
    import httpx

    backend = HeldBackend()
    held = make_client(packaged, backend, tmp_path, max_queue=2, retry_after_s=7)
    transport = httpx.ASGITransport(app=held.http.app)

    async def scenario():
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {"Authorization": f"Bearer {KEY}"}

            async def one():
                return await http.post("/v1/answer", json={"input": {"text": "a"}},
                                       headers=headers)  # fmt: skip

            first = [asyncio.create_task(one()) for _ in range(2)]
            while held.ctx.in_flight < 2:
                await asyncio.sleep(0.01)
            refused = await one()
            backend.release.set()
            return refused, await asyncio.gather(*first)

    refused, done = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
    assert refused.json()["error"]["code"] == "overloaded"
    assert [r.status_code for r in done] == [200, 200] and held.ctx.in_flight == 0
    metrics = generate_latest(held.registry).decode()
    assert "llmops_overload_rejections_total 1.0" in metrics


def test_inputs_are_redacted_before_the_model_and_the_log(client):
    text = "Broken lamp, call me at +1 415 555 0132 or mail jo.doe@example.com"
    r = client.post("/answer", {"input": {"text": text}})
    assert r.status_code == 200
    logged = client.lines()[-1]
    assert logged["inputs"] == [{"text": "Broken lamp, call me at <PHONE> or mail <EMAIL>"}]
    raw = (client.logs).glob("*.jsonl")
    # The number whole, not "555": request ids, timestamps and latencies hold digits too.
    secrets = ("415 555 0132", "jo.doe", "example.com")
    assert not any(s in p.read_text() for p in raw for s in secrets)
    assert logged["status"] == 200 and logged["request_id"] == r.json()["request_id"]
    assert logged["completion_tokens"] > 0 and logged["latency_ms"] > 0
    assert logged["version"] == "v7" and logged["outputs"][0]["finish_reason"] in ("stop", "length")


def test_refused_requests_are_logged_without_their_input(client):
    client.post("/answer", {"input": {"text": "mail a@b.example.org " + "x" * 500}})
    logged = client.lines()[-1]
    assert logged["status"] == 413 and logged["inputs"] == [] and "400" in logged["error"]


def test_feedback_is_recorded_for_a_logged_request_and_redacted(client, rows):
    request_id = client.post("/answer", {"input": {"text": rows[0]["text"]}}).json()["request_id"]
    body = {"request_id": request_id, "rating": 2, "comment": "wrong; I am at bo@x.example.com",
            "correction": {"topic": "price", "summary": "Call 415-555-0132 about the price."}}  # fmt: skip
    r = client.post("/feedback", body)
    assert r.status_code == 201, r.text
    line = client.lines("feedback")[-1]
    assert line["request_id"] == request_id and line["rating"] == 2
    assert line["correction"] == {"topic": "price", "summary": "Call <PHONE> about the price."}
    assert line["comment"] == "wrong; I am at <EMAIL>"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"request_id": "nope", "rating": 5}, 404, "request_id"),
        ({"request_id": "x", "rating": 9}, 422, "rating"),
        ({"request_id": "LOGGED", "rating": 5, "correction": {"topic": "colour"}}, 422,
         "correction.topic"),
        ({"request_id": "LOGGED", "rating": 5, "correction": {"mood": "x"}}, 422,
         "correction.mood"),
    ],
)  # fmt: skip
def test_feedback_checks_the_request_and_the_correction(client, rows, body, status, param):
    logged = client.post("/answer", {"input": {"text": rows[1]["text"]}}).json()["request_id"]
    body = {**body, "request_id": logged if body["request_id"] == "LOGGED" else body["request_id"]}
    r = client.post("/feedback", body)
    assert r.status_code == status and r.json()["error"]["param"] == param


def test_feedback_finds_requests_logged_before_a_restart(client, packaged, worker, tmp_path, rows):
    request_id = client.post("/answer", {"input": {"text": rows[2]["text"]}}).json()["request_id"]
    restarted = make_client(packaged, worker, tmp_path)
    assert restarted.post("/feedback", {"request_id": request_id, "rating": 4}).status_code == 201


def chat(client, **body):
    body = {"model": "reviews-model", "messages": [{"role": "user", "content": "great lamp"}],
            **body}  # fmt: skip
    return client.post("/chat/completions", body)


def test_chat_completion_answers_the_last_user_message(client, rows):
    messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "old"},
                {"role": "assistant", "content": "x"}, {"role": "user", "content": rows[0]["text"]}]  # fmt: skip
    r = chat(client, messages=messages)
    assert r.status_code == 200, r.text
    body = r.json()
    single = client.post("/answer", {"input": {"text": rows[0]["text"]}}).json()["answer"]
    assert body["choices"][0]["message"]["content"] == single["text"]
    assert body["usage"]["total_tokens"] == sum(single["usage"].values())
    assert body["object"] == "chat.completion" and body["llmops"]["output"] == single["output"]


def test_chat_json_mode_always_returns_a_json_object(client):
    r = chat(client, response_format={"type": "json_object"}, max_tokens=3)
    content = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(content) == {"topic", "sentiment", "summary"}
    assert r.json()["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "gpt-4"}, 404, "model", "model_not_found"),
        ({"messages": [{"role": "system", "content": "x"}]}, 400, "messages", "invalid_request"),
        ({"messages": []}, 422, "messages", "invalid_value"),
        ({"n": 2}, 400, "n", "invalid_request"),
        ({"max_tokens": 1000}, 400, "max_tokens", "invalid_request"),
        ({"max_completion_tokens": 1000}, 400, "max_completion_tokens", "invalid_request"),
        ({"response_format": {"type": "json_schema"}}, 400, "response_format", "invalid_request"),
        ({"messages": [{"role": "user", "content": "y" * 401}]}, 413, "messages[0].content",
         "input_too_long"),
    ],
)  # fmt: skip
def test_chat_errors_use_openai_statuses_and_body(client, body, status, param, code):
    r = chat(client, **body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["code"] == code


def events(response) -> list:
    data = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_chat_streaming_sends_the_same_answer_as_events(client, rows):
    plain = chat(client, messages=[{"role": "user", "content": rows[3]["text"]}]).json()
    r = chat(client, messages=[{"role": "user", "content": rows[3]["text"]}], stream=True,
             stream_options={"include_usage": True})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = events(r)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 3
    assert chunks[-2]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == plain["usage"] and chunks[-1]["choices"] == []
    assert client.lines()[-1]["status"] == 200 and client.ctx.in_flight == 0


def test_models_lists_the_served_model_with_its_lineage(client):
    r = client.http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    (card,) = r.json()["data"]
    assert card["id"] == "reviews-model" and card["version"] == "v7"
    assert card["lineage"] == LINEAGE
    one = client.http.get("/v1/models/reviews-model", headers={"Authorization": f"Bearer {KEY}"})
    assert one.json() == card
    other = client.http.get("/v1/models/other", headers={"Authorization": f"Bearer {KEY}"})
    assert other.status_code == 404


def test_metrics_count_requests_tokens_and_unparsed_answers(client, rows):
    client.post("/answer", {"input": {"text": rows[0]["text"]}, "max_tokens": 3})
    client.post("/answer", {"input": {}})
    text = generate_latest(client.registry).decode()
    assert 'llmops_requests_total{endpoint="answer",status="200"} 1.0' in text
    assert 'llmops_requests_total{endpoint="answer",status="422"} 1.0' in text
    assert 'llmops_tokens_total{kind="completion"} 3.0' in text
    assert "llmops_unparsed_answers_total 1.0" in text


def test_the_openapi_schema_names_the_task_fields(client):
    schema = client.http.get("/v1/openapi.json").json()
    inputs = schema["components"]["schemas"]["TaskInput"]
    assert set(inputs["properties"]) == {"text"} and inputs["additionalProperties"] is False
    outputs = schema["components"]["schemas"]["TaskOutput"]["properties"]
    assert set(outputs) == {"topic", "sentiment", "summary"}
    assert "price" in outputs["topic"]["description"]


class OverContextBackend:
    """A backend whose model cannot take the prompt (the tests' tiny model has room for any
    prompt its limits allow, so the refusal is made here)."""

    async def stream(self, item):
        yield runtime.Result(error="the prompt takes 900 tokens; the context is 512")


def test_a_streamed_prompt_over_the_context_is_a_413_before_any_event(packaged, tmp_path):
    over = make_client(packaged, OverContextBackend(), tmp_path)
    r = chat(over, stream=True)
    assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded"
    assert over.ctx.in_flight == 0 and over.lines()[-1]["status"] == 413


def test_a_client_leaving_a_stream_early_frees_its_place_and_is_logged(client, rows):
    text = rows[3]["text"]
    with client.http.stream("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                            json={"model": "reviews-model", "stream": True,
                                  "messages": [{"role": "user", "content": text}]}) as r:  # fmt: skip
        assert r.status_code == 200
        next(r.iter_lines())  # the first event, then the client goes
    deadline = time.monotonic() + 30
    while client.ctx.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.ctx.in_flight == 0
    logged = client.lines()[-1]
    assert logged["status"] in (200, 499) and logged["endpoint"] == "chat"


def raw(client, path: str, text: str, key: str | None = KEY):
    """POST a JSON text as it is: lone surrogates ("\\ud800") are written as JSON escapes."""
    headers = {"Content-Type": "application/json"}
    headers |= {"Authorization": f"Bearer {key}"} if key else {}
    return client.http.post(f"/v1{path}", content=text.encode(), headers=headers)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/answer", '{"input": {"text": "broken \\ud800 lamp"}}', "input.text"),
        ("/answer", '{"inputs": [{"text": "fine"}, {"text": "\\udfff"}]}', "inputs[1].text"),
        ("/chat/completions", '{"model": "reviews-model", "messages": [{"role": "user", '
         '"content": "a \\ud83d b"}]}', "messages[0].content"),
        ("/feedback", '{"request_id": "LOGGED", "rating": 3, "correction": '
         '{"summary": "x\\ud800"}}', "correction.summary"),
        ("/feedback", '{"request_id": "LOGGED", "rating": 3, "correction": {"\\ud800": "x"}}',
         "correction"),
        ("/feedback", '{"request_id": "LOGGED", "rating": 3, "comment": "\\udc00"}', "comment"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_refused_on_its_own_naming_the_field(client, rows, path, body, param):
    logged = client.post("/answer", {"input": {"text": rows[0]["text"]}}).json()["request_id"]
    r = raw(client, path, body.replace("LOGGED", logged))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == param and "unicode" in r.json()["error"]["message"].lower()
    assert client.post("/answer", {"input": {"text": rows[0]["text"]}}).status_code == 200
    assert all(x["status"] in (200, 422) for x in client.lines())  # and the log took it


@pytest.mark.parametrize("value", ['"10"', "true", "2.0", "null"])
def test_numbers_and_flags_have_strict_types(client, rows, value):
    logged = client.post("/answer", {"input": {"text": rows[0]["text"]}}).json()["request_id"]
    bodies = [
        ("/answer", '{"input": {"text": "a"}, "max_tokens": %s}', "max_tokens"),
        ("/feedback", '{"request_id": "' + logged + '", "rating": %s}', "rating"),
        ("/chat/completions", '{"model": "reviews-model", "messages": [{"role": "user", '
         '"content": "a"}], "n": %s}', "n"),
    ]  # fmt: skip
    for path, body, param in bodies:
        r = raw(client, path, body % value)
        if value == "null" and param == "max_tokens":  # optional: null is leaving it out
            assert r.status_code == 200, r.text
            continue
        assert r.status_code == 422, (path, value, r.text)
        assert r.json()["error"]["param"] == param
    r = raw(client, "/chat/completions", '{"model": "reviews-model", "stream": "true", '
            '"messages": [{"role": "user", "content": "a"}]}')  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["param"] == "stream"


def test_the_openapi_schema_declares_the_bearer_key(client):
    schema = client.http.get("/v1/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    (name,) = [n for n, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    for path in ("/answer", "/chat/completions", "/feedback", "/models"):
        (operation,) = schema["paths"][path].values()
        assert operation["security"] == [{name: []}], path


def test_feedback_requests_are_in_the_request_log(client, rows):
    request_id = client.post("/answer", {"input": {"text": rows[0]["text"]}}).json()["request_id"]
    assert client.post("/feedback", {"request_id": request_id, "rating": 5}).status_code == 201
    assert client.post("/feedback", {"request_id": "f" * 32, "rating": 5}).status_code == 404
    logged = [(x["endpoint"], x["status"]) for x in client.lines()]
    assert logged[-2:] == [("feedback", 201), ("feedback", 404)]


def test_a_failing_item_fails_alone_and_its_batch_neighbours_are_answered(served, rows):
    items = [runtime.Item({"text": r["text"]}, 16) for r in rows[:3]]
    poisoned = runtime.Item(
        {"text": "x \ud800 y"}, 16
    )  # past the API's check: the tokenizer raises
    results = served.complete([items[0], poisoned, items[1], items[2]])
    assert results[1].error_code == runtime.FAILED and results[1].refusal("x").status == 500
    alone = [served.complete([i])[0] for i in items]
    assert [results[0], results[2], results[3]] == alone


def test_items_of_a_failed_step_are_retried_alone_and_answered(worker, rows):
    """Fault injection: the scheduler's next forward pass raises once (no input makes the
    tiny model's forward pass fail, so the failure is made here)."""
    scheduler, failed = worker.served.scheduler, []
    real = scheduler._forward

    def once(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    items = [runtime.Item({"text": r["text"]}, 16) for r in rows[:3]]
    scheduler._forward = once
    try:
        results = asyncio.run(worker.complete(items))
    finally:
        del scheduler._forward
    assert failed and not any(r.error for r in results)
    assert results == worker.served.complete(items)


@pytest.mark.timeout(30)  # a hanging probe would hang the test
@pytest.mark.parametrize("kind", ["hangs", "raises", "ready"])
def test_readiness_answers_in_time_whatever_the_generator_does(kind):
    from llmops.serve import wire

    class Probe:
        async def is_ready(self, timeout):
            if kind == "hangs":
                await asyncio.sleep(3600)
            if kind == "raises":
                raise RuntimeError("model not loaded")
            return True

    assert asyncio.run(wire.ready(Probe(), 0.3)) is (kind == "ready")
