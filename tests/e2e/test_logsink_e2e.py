"""The served Bento's log sink against a real S3 API (moto's server on loopback): answered
requests and feedback arrive in the store as `llmops.watch.logs.read` reads them; with the
store down requests are still answered, /metrics shows the failed writes and the sink's
counters, the outage is logged once and without secrets; back up, the held lines arrive;
the service's shutdown closes the sink."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.bentos import AUTH, KEY, served
from tests.s3store import BUCKET, SECRET, Store, ids, read_back, until

pytestmark = pytest.mark.e2e

TEXTS = ("the lamp broke after a week", "great sound, fast delivery", "it never arrived")


def answer(url: str, text: str) -> str:
    r = httpx.post(f"{url}/v1/answer", json={"input": {"text": text}}, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["request_id"]


def sink_metric(url: str, name: str, kind: str | None = None) -> float | None:
    """The sum of a log-sink series on /metrics (None when not exposed)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    pattern = rf"^llmops_log_sink_{name}(\{{[^}}]*\}})? (\S+)$"
    found = [(m[1] or "", float(m[2])) for m in re.finditer(pattern, text, re.M)]
    found = [value for labels, value in found if kind is None or f'kind="{kind}"' in labels]
    return sum(found) if found else None


def test_served_logs_reach_the_store_and_an_outage_never_fails_a_request(
    bento, tmp_path, monkeypatch
):
    store = Store().start()
    for name, value in store.env().items():
        monkeypatch.setenv(name, value)  # for reading back here
    uri = f"s3://{BUCKET}/e2e/logs"
    env = {**store.env(), "LLMOPS_LOG_URI": uri}
    server_log = tmp_path / "bentoml.log"
    try:
        with served(bento, KEY, tmp_path / "logs", server_log, env=env) as url:
            answered = [answer(url, text) for text in TEXTS]
            feedback = {"request_id": answered[0], "rating": 2, "comment": "late"}
            r = httpx.post(f"{url}/v1/feedback", json=feedback, headers=AUTH, timeout=30)
            assert r.status_code == 201 and r.json()["recorded"] is True, r.text
            until(lambda: set(answered) <= set(ids(read_back(uri))), "the requests stored", 60)
            until(lambda: read_back(uri, "feedback"), "the feedback stored", 60)
            (stored,) = read_back(uri, "feedback")
            assert stored["request_id"] == answered[0] and stored["rating"] == 2
            lines = {x["request_id"]: x for x in read_back(uri)}
            assert lines[answered[1]]["inputs"] == [{"text": TEXTS[1]}]
            assert lines[answered[1]]["status"] == 200 and lines[answered[1]]["endpoint"]
            assert sink_metric(url, "written_lines_total", "requests") >= 3
            assert sink_metric(url, "written_lines_total", "feedback") == 1

            store.stop()
            late = [answer(url, text) for text in TEXTS]  # each answered 200 meanwhile
            until(lambda: sink_metric(url, "write_failures_total") >= 1, "a failed write", 60)
            assert sink_metric(url, "buffered_lines") >= 3
            assert sink_metric(url, "dropped_lines_total", "requests") == 0  # 3 < sink_buffer
            outage = server_log.read_text(errors="replace")
            assert outage.count(f"log sink: cannot write to s3://{BUCKET}/e2e/logs") == 1
            assert SECRET not in outage

            store.start()  # back, empty: the held lines are delivered on the next retry
            until(lambda: set(late) <= set(ids(read_back(uri))), "the held lines stored", 90)
            assert sink_metric(url, "buffered_lines") == 0
        closed = server_log.read_text(errors="replace")
        assert SECRET not in closed
        assert "cleanup hook: close_logs" in closed  # the sink flushed at shutdown
    finally:
        if store.server is not None:
            store.stop()
