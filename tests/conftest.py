"""Shared fixtures: the tests' own reviews task (tests/synthetic.py) as a tiny project
(prepared data and a tiny base model built in-process, offline, in seconds) that the model
stages' tests train on, and its parsed params and task. Nothing here reads the repository's
data/raw or its task.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.config.params import Params, load_params
from llmops.config.task import Task
from tests.bentos import KEY, Bento, build, served
from tests.synthetic import project_files, review_rows, write_params

REPO = Path(__file__).resolve().parents[1]
SUBSET = {"train": 96, "val": 16, "test": 16}  # rows per split in the tiny project


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def params(tmp_path_factory) -> Params:
    """The reviews task's params at test sizes."""
    return load_params(write_params(tmp_path_factory.mktemp("params") / "params.yaml"))


@pytest.fixture(scope="session")
def task(params) -> Task:
    return Task.from_params(params.task)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A folder laid out like the repository, after prep and base, on the reviews task."""
    from llmops.stages.base import base
    from llmops.stages.prep import prep, write_splits

    root = project_files(tmp_path_factory.mktemp("project"), review_rows(160))
    params = load_params(root / "params.yaml")
    with prep(Task.from_params(params.task), params.prep, root / "data" / "raw") as result:
        splits = {name: list(result.records(name))[:n] for name, n in SUBSET.items()}
    write_splits(splits, root / "data" / "prepared")
    base(params, root / "data" / "prepared", root / params.task.prompt, root / "models" / "base")
    return root


@pytest.fixture(scope="session")
def adapter(project) -> Path:
    """A LoRA adapter trained by the real train stage on the tiny project (24 steps)."""
    out = project / "models" / "adapter"
    if not out.exists():
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
        args = ["--params", "params.yaml", "--data", "data/prepared", "--base", "models/base",
                "--prompt", "prompts/review.jinja", "--out", "models/adapter",
                "--checkpoints", "models/checkpoints", "--metrics", "metrics/train.json",
                "--plots", "reports/train"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "llmops.stages.train", *args], cwd=project,
                       env=env, check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture(scope="session")
def evaluated(project, adapter) -> Path:
    """The real eval stage run on the tiny project: metrics/eval.json and predictions."""
    out = project / "data" / "eval" / "predictions.jsonl"
    if not out.exists():
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
        args = ["--params", "params.yaml", "--data", "data/prepared", "--base", "models/base",
                "--adapter", "models/adapter", "--metrics", "metrics/eval.json",
                "--examples", "metrics/eval_examples.csv", "--plots", "reports/eval",
                "--predictions", "data/eval/predictions.jsonl"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "llmops.stages.eval", *args], cwd=project,
                       env=env, check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture(scope="session")
def bento(project, evaluated, tmp_path_factory) -> Bento:
    """The tiny project packaged and built as `make bento` does, in a private BentoML home."""
    return build(project, tmp_path_factory.mktemp("bentoml"))


@pytest.fixture(scope="module")
def served_logs(tmp_path_factory) -> Path:
    """The request-log folder of the module's served Bento (`served_url`)."""
    return tmp_path_factory.mktemp("requestlog")


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    """Where the module's `bentoml serve` writes its own output."""
    return tmp_path_factory.mktemp("server") / "bentoml.log"


@pytest.fixture(scope="module")
def served_url(bento, served_logs, server_log) -> Iterator[str]:
    """The test Bento under the real `bentoml serve` on loopback, requiring tests.bentos.KEY;
    one server per test module, stopped after it."""
    with served(bento, KEY, served_logs, server_log) as url:
        yield url
