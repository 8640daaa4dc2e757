"""Fixtures of the worked example's tests: the repository's params (the triage task) and the
sample data generated afresh. These tests are marked `example`; `make init` removes them
with the example."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.ticket_triage.generate import Planted, generate
from llmops.config.params import Params, load_params

REPO = Path(__file__).resolve().parents[3]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.example)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def sample(tmp_path_factory, params) -> tuple[Path, Planted]:
    """The sample data generated afresh, with what the generator planted in it."""
    out = tmp_path_factory.mktemp("sample") / "raw"
    return out, generate(out, params.task.inputs["message"].max_chars)
