"""The built Bento under the real `bentoml serve` on a free loopback port, driven over real
HTTP and by the official `openai` client: answers equal eval's, guards, metrics, the log;
and attacked: poisoned requests among ordinary ones, made-up paths, keyless floods,
chunked and slow bodies, slow headers (loops bounded, all on loopback)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.bentos import AUTH, KEY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def url(served_url) -> str:
    return served_url


@pytest.fixture(scope="module")
def logs(served_logs) -> Path:
    return served_logs


@pytest.fixture(scope="module")
def predictions(evaluated) -> list[dict]:
    return [json.loads(line) for line in evaluated.read_text().splitlines()]


def auth() -> dict:
    return dict(AUTH)


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


def test_the_served_bento_runs_its_packaged_library(url, server_log, bento):
    (where,) = set(re.findall(r"llmops library: (\S+)", server_log.read_text(errors="replace")))
    assert where.startswith(str(bento.home)) and ".whl" in where, where  # not the checkout


def raw(path: str, text: str, key: str | None = KEY, client=httpx) -> httpx.Response:
    """POST a JSON text as it is (lone surrogates written as JSON escapes)."""
    headers = {"Content-Type": "application/json"} | (
        {"Authorization": f"Bearer {key}"} if key else {}
    )
    return client.post(f"{path}", content=text.encode(), headers=headers, timeout=120)


def ordinary_texts(predictions) -> list[str]:
    return [p["inputs"]["text"] for p in predictions[:2]]


@pytest.fixture(scope="module")
def answered(url, predictions) -> str:
    body = {"input": {"text": predictions[0]["inputs"]["text"]}}
    return httpx.post(f"{url}/v1/answer", json=body, headers=auth(), timeout=60).json()[
        "request_id"
    ]


async def alongside(url: str, texts: list[str], odd: list[tuple[str, str]]) -> tuple[list, list]:
    """Ordinary answers for `texts` and the raw `odd` requests (path, JSON text), all at once."""
    import asyncio

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        plain = [
            client.post("/v1/answer", json={"input": {"text": t}}, headers=auth()) for t in texts
        ]
        others = [raw(path, text, client=client) for path, text in odd]
        done = await asyncio.gather(*plain, *others)
    return done[: len(texts)], done[len(texts) :]


def test_a_request_that_cannot_be_encoded_fails_alone_not_its_batch(url, predictions, answered):
    import asyncio

    odd = [
        ("/v1/answer", '{"input": {"text": "broken \\ud800 lamp"}}'),
        ("/v1/chat/completions", '{"model": "reviews-model", "messages": [{"role": "user", '
         '"content": "\\udfff"}]}'),
        ("/v1/feedback", '{"request_id": "' + answered + '", "rating": 2, "correction": '
         '{"summary": "x\\ud800"}}'),
    ]  # fmt: skip
    for _ in range(3):
        plain, others = asyncio.run(alongside(url, ordinary_texts(predictions), odd))
        assert [r.status_code for r in plain] == [200, 200]
        assert [r.status_code for r in others] == [422, 422, 422]
        params = [r.json()["error"]["param"] for r in others]
        assert params == ["input.text", "messages[0].content", "correction.summary"]


def any_text():
    from hypothesis import strategies as st

    surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
    return st.text(st.one_of(surrogate, st.characters(exclude_categories=())), max_size=40)


def any_json():
    from hypothesis import strategies as st

    leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text()
    return st.recursive(leaf, lambda x: st.lists(x, max_size=3)
                        | st.dictionaries(any_text(), x, max_size=3), max_leaves=8)  # fmt: skip


def test_arbitrary_unicode_and_json_never_fail_an_ordinary_request(url, predictions, answered):
    import asyncio

    from hypothesis import given, settings

    @settings(max_examples=20, deadline=None, database=None)
    @given(text=any_text(), junk=any_json())
    def check(text: str, junk) -> None:
        dump = lambda x: json.dumps(x)  # noqa: E731  (ASCII: surrogates as \\u escapes)
        odd = [
            ("/v1/answer", dump({"input": {"text": text}})),
            ("/v1/chat/completions", dump({"model": "reviews-model",
                                           "messages": [{"role": "user", "content": text}]})),
            ("/v1/feedback", dump({"request_id": answered, "rating": 3, "comment": text,
                                   "correction": junk})),
            ("/v1/answer", dump(junk)),
        ]  # fmt: skip
        plain, others = asyncio.run(alongside(url, ordinary_texts(predictions), odd))
        assert [r.status_code for r in plain] == [200, 200], [r.text for r in plain]
        for r in others:  # answered, refused by a guard, or overloaded; never a server error
            assert r.status_code in (200, 201, 400, 413, 422, 503), r.text

    check()


def metric(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_stay_bounded_under_ten_thousand_made_up_paths(url):
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/warm", "/v1/warm", "/v1/models/warm"):
            client.get(path, headers=auth())
        before = client.get("/metrics").text
        for i in range(5000):  # 10,000 distinct paths
            client.get(f"/x{i}/%00{i}")
            client.get(f"/v1/models/m{i}", headers=auth())
        after = client.get("/metrics").text
    assert "\x00" not in after and "/x4999" not in after and "/v1/models/m4999" not in after
    assert len(after) < len(before) + 4096, (len(before), len(after))  # counts grow, not series
    assert 'endpoint="other"' in after


def test_keyless_floods_leave_the_request_log_as_it_is(url, logs):
    size = lambda: sum(p.stat().st_size for p in logs.glob("*.jsonl"))  # noqa: E731
    series = "llmops_unlogged_refusals_total"
    with httpx.Client(base_url=url, timeout=10) as client:
        counted, before = metric(client.get("/metrics").text, series), size()
        for _ in range(300):
            client.post("/v1/answer", json={"input": {"text": "a"}})
            client.post("/v1/feedback", content=b"junk", headers={"Content-Type": "text/plain"})
            client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
        assert size() == before
        assert metric(client.get("/metrics").text, series) == counted + 900


def connect(url: str):
    import socket

    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def head(path: str, *lines: str) -> bytes:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: test", *lines, "", ""]).encode()


def test_a_chunked_body_is_refused_once_past_the_limit_not_read_whole(url):
    import select

    chunk = b"%x\r\n%s\r\n" % (65_536, b"x" * 65_536)
    sent = 0
    with connect(url) as s:
        s.sendall(head("/v1/answer", f"Authorization: Bearer {KEY}",
                       "Content-Type: application/json", "Transfer-Encoding: chunked"))  # fmt: skip
        try:
            while sent < 50 * 2**20 and not select.select([s], [], [], 0)[0]:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed while the client still sent
            pass
        answer = s.recv(65_536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 2**20, sent  # stopped at the limit (plus socket buffers), not at 50 MB


def test_a_body_that_does_not_arrive_in_time_is_answered_408(url):
    with connect(url) as s:
        s.sendall(head("/v1/answer", f"Authorization: Bearer {KEY}",
                       "Content-Type: application/json", "Content-Length: 100") + b'{"input":')  # fmt: skip
        answer = s.recv(65_536)  # serve.timeouts.body_s is 3 in the test params
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_slow_clients_lose_their_connections_at_the_header_deadline(url):
    import select
    import time

    request = head("/v1/answer", f"Authorization: Bearer {KEY}")
    sockets = [connect(url) for _ in range(60)]
    waiting, timed_out, start = set(range(60)), 0, time.monotonic()
    try:
        for i in range(60):  # a byte every 0.25 s per connection: headers after 30 s
            for k in list(waiting):
                try:
                    sockets[k].send(request[i : i + 1])
                    if select.select([sockets[k]], [], [], 0)[0]:
                        timed_out += sockets[k].recv(200).startswith(b"HTTP/1.1 408")
                        waiting.discard(k)
                except OSError:
                    waiting.discard(k)
            if not waiting:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - start
    finally:
        for s in sockets:
            s.close()
    assert not waiting and timed_out >= 55, (len(waiting), timed_out)  # headers_s: 3
    assert elapsed < 12, elapsed  # long before the headers could have been sent whole
    assert httpx.get(f"{url}/v1/models", headers=auth(), timeout=10).status_code == 200
