"""The built Bento under the real `bentoml serve` on a free loopback port, driven over real
HTTP and by the official `openai` client: answers equal eval's, guards, metrics, the log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.bentos import served

pytestmark = pytest.mark.e2e
KEY = "test-key-123"


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("requestlog")


@pytest.fixture(scope="module")
def url(bento, logs):
    with served(bento, KEY, logs) as url:
        yield url


@pytest.fixture(scope="module")
def predictions(evaluated) -> list[dict]:
    return [json.loads(line) for line in evaluated.read_text().splitlines()]


def auth() -> dict:
    return {"Authorization": f"Bearer {KEY}"}


def test_served_answers_equal_eval_predictions_token_for_token(url, predictions):
    inputs = [{"text": p["inputs"]["text"]} for p in predictions[:6]]
    r = httpx.post(f"{url}/v1/answer", json={"inputs": inputs}, headers=auth(), timeout=120)
    assert r.status_code == 200, r.text
    served = [a["text"] for a in r.json()["answers"]]
    assert served == [p["tuned"]["output"] for p in predictions[:6]]


def test_the_openai_client_works_unchanged(url, predictions):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key=KEY)
    (model,) = client.models.list().data
    text = predictions[0]["inputs"]["text"]
    done = client.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": text}]
    )
    content = done.choices[0].message.content
    assert content == predictions[0]["tuned"]["output"]
    assert done.usage.completion_tokens == predictions[0]["tuned"]["new_tokens"]
    assert done.usage.prompt_tokens > 0 and done.model == model.id
    stream = client.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content
    assert chunks[-1].usage.total_tokens == done.usage.total_tokens
    json_mode = client.chat.completions.create(
        model=model.id, messages=[{"role": "user", "content": text}],
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert isinstance(json.loads(json_mode.choices[0].message.content), dict)


def test_errors_reach_the_openai_client_as_its_exceptions(url):
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="reviews-model", max_tokens=10_000,
                                       messages=[{"role": "user", "content": "a"}])  # fmt: skip
    assert err.value.body["param"] == "max_tokens"


def test_guards_over_real_http(url):
    post = lambda body, **kw: httpx.post(f"{url}/v1/answer", json=body, timeout=60, **kw)  # noqa: E731
    assert post({"input": {"text": "a"}}).status_code == 401
    assert post({"input": {"text": "x" * 401}}, headers=auth()).status_code == 413
    assert post({"input": {"text": "a"}, "max_tokens": 999}, headers=auth()).status_code == 400
    r = post({"input": {"txt": "a"}}, headers=auth())
    assert r.status_code == 422 and r.json()["error"]["param"] == "input.text"  # missing
    for path in ("/livez", "/readyz", "/metrics"):  # open without a key
        assert httpx.get(f"{url}{path}", timeout=10).status_code == 200


def test_overload_is_answered_503_with_retry_after(url):
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            body = {"input": {"text": "the kettle arrived late and the lid is broken"}}
            calls = [client.post(f"{url}/v1/answer", json=body, headers=auth())
                     for _ in range(16)]  # fmt: skip
            return await asyncio.gather(*calls)

    statuses = [r.status_code for r in asyncio.run(burst())]
    refused = statuses.count(503)
    assert refused > 0 and statuses.count(200) + refused == 16, statuses  # serve.max_queue 4
    assert statuses.count(200) >= 4


def test_metrics_log_and_feedback_of_served_requests(url, logs):
    def count(text: str, line: str) -> float:
        found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    series = 'llmops_requests_total{endpoint="answer",status="200"}'
    before = count(httpx.get(f"{url}/metrics").text, series)
    text = "My new lamp broke; call me on +44 20 7946 0958 or write to ann@mail.example.com"
    r = httpx.post(f"{url}/v1/answer", json={"input": {"text": text}}, headers=auth(), timeout=60)
    request_id = r.json()["request_id"]
    assert count(httpx.get(f"{url}/metrics").text, series) == before + 1
    lines = [
        json.loads(x) for f in logs.glob("requests-*.jsonl") for x in f.read_text().splitlines()
    ]
    (line,) = [x for x in lines if x["request_id"] == request_id]
    assert line["inputs"] == [{"text": "My new lamp broke; call me on <PHONE> or write to <EMAIL>"}]
    assert line["status"] == 200 and line["completion_tokens"] > 0
    on_disk = "".join(f.read_text() for f in logs.glob("*.jsonl"))
    assert "20 7946 0958" not in on_disk and "ann@" not in on_disk  # not digits alone: ids, timings
    feedback = {"request_id": request_id, "rating": 1, "correction": {"topic": "quality"}}
    r = httpx.post(f"{url}/v1/feedback", json=feedback, headers=auth(), timeout=30)
    assert r.status_code == 201
    (stored,) = [
        json.loads(x) for f in logs.glob("feedback-*.jsonl") for x in f.read_text().splitlines()
    ]
    assert stored["request_id"] == request_id and stored["correction"] == {"topic": "quality"}


def test_models_reports_the_lineage_of_the_model_store_entry(url, bento):
    import yaml

    r = httpx.get(f"{url}/v1/models", headers=auth(), timeout=10)
    (card,) = r.json()["data"]
    name, version = bento.model.split(":")
    stored = yaml.safe_load((bento.home / "models" / name / version / "model.yaml").read_text())
    assert card["id"] == name and card["version"] == version
    assert card["lineage"] == stored["metadata"]
