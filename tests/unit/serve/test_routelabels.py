"""Request metrics are labelled by route: any number of made-up paths gives a bounded set
of labels (test_service_e2e scrapes a real server's /metrics under such a flood)."""

from __future__ import annotations

import random

from fastapi import FastAPI

from llmops.serve.routelabels import OTHER, Routes


def app() -> FastAPI:
    sub = FastAPI()
    sub.post("/answer")(lambda: None)
    sub.get("/models/{model_id:path}")(lambda model_id: None)
    return sub


def test_ten_thousand_made_up_paths_give_a_bounded_set_of_labels():
    routes = Routes(app(), "/v1", extra=("/complete",))
    rng = random.Random(0)
    alphabet = "abc/%\x00.\u00e9\ud800"
    paths = ["/" + "".join(rng.choices(alphabet, k=rng.randint(0, 30))) for _ in range(10_000)]
    paths += [f"/v1/x{i}" for i in range(1000)] + [f"/v1/models/m{i}" for i in range(1000)]
    labels = {routes(p) for p in paths}
    assert labels <= {OTHER, "/", "/v1/models/{model_id:path}"}, labels
    assert "/v1/models/{model_id:path}" in labels


def test_known_paths_keep_their_own_label():
    routes = Routes(app(), "/v1", extra=("/complete",))
    for path in ("/v1/answer", "/v1/openapi.json", "/v1/docs", "/metrics", "/readyz",
                 "/livez", "/complete"):  # fmt: skip
        assert routes(path) == path
    assert routes("/v1/answer/") == OTHER and routes("/v1/answerx") == OTHER
    assert routes("/v1/models/a/b") == "/v1/models/{model_id:path}"
