"""Shared fixtures: the repository's own params and prompt, and small raw-data builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.params import Params, load_params
from llmops.sample_data.generate import Planted, generate

REPO = Path(__file__).resolve().parents[1]


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
    return out, generate(out, params.prep.max_message_chars)


def ticket(**fields) -> dict:
    """A valid raw row; keyword arguments override or (with None) remove fields."""
    row = {
        "id": "T1",
        "message": "Where is my package? Order ORD-123456 has not arrived.",
        "category": "shipping",
        "priority": "medium",
        "reply": "Sorry about the wait on ORD-123456, I am checking with the carrier.",
    }
    row.update(fields)
    return {k: v for k, v in row.items() if v is not None}


def write_raw(folder: Path, lines: list[str | bytes | dict], name: str = "part.jsonl") -> Path:
    """Write JSONL lines (dicts are dumped, str/bytes written as they are) into folder/name."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = [
        json.dumps(x).encode() if isinstance(x, dict) else x if isinstance(x, bytes) else x.encode()
        for x in lines
    ]
    path = folder / name
    path.write_bytes(b"".join(line + b"\n" for line in encoded))
    return path
