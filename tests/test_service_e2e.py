"""The built Bento under the real `bentoml serve` on a free loopback port, driven over real
HTTP and by the official `openai` client: answers equal eval's, guards, metrics, the log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llmops.server import running

pytestmark = pytest.mark.e2e
KEY = "test-key-123"


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("requestlog")


@pytest.fixture(scope="module")
def url(bento, logs):
    env = {**bento.env, "LLMOPS_TEST_API_KEY": KEY, "LLMOPS_LOG_DIR": str(logs)}
    with running(bento.tag, env=env, cwd=bento.project) as url:
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
