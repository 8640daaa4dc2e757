"""Shared fixtures: the repository's own params and prompt, small raw-data builders, and a
tiny project (prepared data, a tiny base model built in-process, a fast test config) that
the model stages' tests train on, offline, in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

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


# The test config: the repository's params.yaml with a tiny model and short runs. Dropout,
# gradient accumulation and lm_head are on so resume and multi-process tests cover them.
TEST_PARAMS = {
    "base": {
        "tiny": {
            "vocab_size": 512,
            "hidden_size": 32,
            "layers": 2,
            "heads": 2,
            "intermediate_size": 64,
            "context_length": 1024,
            "block_length": 64,
            "batch_size": 8,
            "steps": 6,
            "learning_rate": 0.003,
            "warmup_steps": 2,
            "seed": 0,
        }
    },
    "train": {
        "lora": {
            "r": 4,
            "alpha": 8,
            "dropout": 0.1,
            "target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"],
        },
        "learning_rate": 0.003,
        "warmup_steps": 2,
        "epochs": 1,
        "max_steps": 24,
        "batch_size": 4,
        "grad_accum": 2,
        "max_length": 1024,
        "eval_every": 6,
        "checkpoint_every": 4,
        "log_every": 2,
    },
}
SUBSET = {"train": 96, "val": 16, "test": 16}  # rows per split in the tiny project


def merged(base: dict, override: dict) -> dict:
    """`base` with `override`'s keys replaced, recursively."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def write_params(path: Path, override: dict) -> Path:
    """The repository's params.yaml with `override` applied, written to `path`."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    path.write_text(yaml.safe_dump(merged(raw, override), sort_keys=False))
    return path


@pytest.fixture(scope="session")
def project(tmp_path_factory, sample) -> Path:
    """A folder laid out like the repository, after prep and base, on the test config."""
    from llmops.stages.base import base
    from llmops.stages.prep import prep, write_outputs

    root = tmp_path_factory.mktemp("project")
    params = load_params(write_params(root / "params.yaml", TEST_PARAMS))
    shutil.copytree(REPO / "prompts", root / "prompts")
    result = prep(params.task, params.prep, sample[0])
    splits = {name: rows[: SUBSET[name]] for name, rows in result.splits.items()}
    write_outputs(
        type(result)(result.rows_in, splits, [], result.redactions),
        root / "data" / "prepared",
        root / "data" / "quarantine",
    )
    base(
        params.base,
        params.task,
        root / "data" / "prepared" / "train.jsonl",
        root / "prompts" / "triage.jinja",
        root / "models" / "base",
    )
    return root


@pytest.fixture(scope="session")
def adapter(project) -> Path:
    """A LoRA adapter trained by the real train stage on the tiny project (24 steps)."""
    import os
    import subprocess
    import sys

    out = project / "models" / "adapter"
    if not out.exists():
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
        args = ["--params", "params.yaml", "--data", "data/prepared", "--base", "models/base",
                "--prompt", "prompts/triage.jinja", "--out", "models/adapter",
                "--checkpoints", "models/checkpoints", "--metrics", "metrics/train.json",
                "--plots", "reports/train"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "llmops.stages.train", *args], cwd=project,
                       env=env, check=True, capture_output=True)  # fmt: skip
    return out
