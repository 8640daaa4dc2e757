"""Fuzz the served API from its own OpenAPI schema (schemathesis): generated requests, valid
and invalid, to every operation of the real `bentoml serve`, all with the right API key; none
may get a 5xx; every status, content type and body must be one the schema declares (errors
are OpenAI's body). Valid requests may still be refused: limits the schema cannot state
(max_tokens over serve.max_tokens, text over max_chars after cleaning) answer 400 and 413.
One route answers outside the schema: an id with raw control characters in GET
/v1/models/{id} never reaches the API (BentoML's router answers a plain-text 404)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from llmops.config.params import load_params
from llmops.config.task import Task
from tests.bentos import AUTH

pytestmark = pytest.mark.e2e
# Operations with no input a request could get wrong: GET /models takes none, and any string
# is a valid model id (Hypothesis cannot generate an invalid request for them).
NOTHING_TO_INVALIDATE = {"GET /models", "GET /models/{model_id}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
# 50 examples per operation and mode: about 15 s of requests, the module (with the Bento's
# build) about a minute and a half on two cores; database=None: no examples kept between runs.
# derandomize: the same requests every run, so a run is repeatable.
EXAMPLES = settings(max_examples=50, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


@pytest.fixture(scope="module")
def served(served_url) -> str:
    return served_url


@pytest.fixture(scope="module")
def api_schema(served) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{served}/v1/openapi.json", timeout=30)
    loaded.config.update(base_url=f"{served}/v1")  # the sub-app's paths are relative to /v1
    return loaded


@pytest.fixture(scope="module")
def known(served, bento) -> dict[str, object]:
    """Values random generation almost never hits, under the names of the API's fields and
    path parameters: the served model's name, a logged request's id, the one `n` served."""
    model = httpx.get(f"{served}/v1/models", headers=AUTH, timeout=30).json()["data"][0]["id"]
    task = Task.from_params(load_params(bento.project / "params.yaml").task)
    fields = {f.name: f.values[0] if f.is_label else "fine" for f in task.inputs}
    r = httpx.post(f"{served}/v1/answer", json={"input": fields}, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return {"model": model, "model_id": model, "request_id": r.json()["request_id"], "n": 1}


def steered(strategy: st.SearchStrategy, known: dict[str, object]) -> st.SearchStrategy:
    """Cases of `strategy`, half of them with the `known` values put in, so that generated
    requests also get past the 404s to the code behind them."""

    @st.composite
    def cases(draw):
        case = draw(strategy)
        if draw(st.booleans()):  # new dicts: a drawn value must not change once drawn
            if isinstance(case.body, dict):
                case.body = {**case.body, **{k: v for k, v in known.items() if k in case.body}}
            params = case.path_parameters or {}
            case.path_parameters = {**params, **{k: v for k, v in known.items() if k in params}}
        return case

    return cases()


def fuzz(operation: APIOperation, mode: GenerationMode, known: dict[str, object]) -> None:
    """Send `operation` generated requests of `mode` and check every answer."""
    strategy = operation.as_strategy(mode)
    if mode is GenerationMode.POSITIVE:
        strategy = steered(strategy, known)

    @given(case=strategy)
    @EXAMPLES
    def one(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=120)

    one()


# schemathesis.pytest.from_fixture would do this loop, but 4.32.5 sets `Function._nodeid`,
# which pytest 9.2 no longer has (AttributeError); so: Hypothesis over each operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_generated_requests_get_no_server_error_and_schema_conformant_answers(
    api_schema, known, mode, subtests
):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations, "the served schema lists no operations"
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.label in NOTHING_TO_INVALIDATE:
            continue
        with subtests.test(operation.label):
            fuzz(operation, mode, known)


def test_a_streamed_chat_answer_conforms_to_the_schema_event_by_event(api_schema, known):
    # Server-sent events are checked one by one against the schema's `itemSchema`.
    operation = api_schema["/chat/completions"]["POST"]
    body = {"model": known["model"], "stream": True, "max_tokens": 8,
            "messages": [{"role": "user", "content": "fine"}]}  # fmt: skip
    case = operation.Case(body=body, media_type="application/json")
    response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=120)
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")
