"""MLflow tracking: where runs go, what every run is tagged with, and params as flat keys.

Runs go to `MLFLOW_TRACKING_URI` when it is set (a team server), else to the SQLite
database `mlflow.db` in the working directory (the repo root under dvc; gitignored).
Open it with `make ui`. Nothing here runs at import time; stages call `start`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

log = logging.getLogger(__name__)
DEFAULT_URI = "sqlite:///mlflow.db"
EXPERIMENT = "llmops"  # MLFLOW_EXPERIMENT_NAME overrides


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def safe_uri(uri: str) -> str:
    """A URI (or path) fit for logs and output files: without user:password@, query string
    or fragment, any of which may hold a credential (s3://key:secret@bucket/p?token=...).
    One without them is returned as it is."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        return uri
    host = parts.netloc.rsplit("@", 1)[-1]
    return (f"{parts.scheme}://{host}" if "://" in uri else "") + parts.path


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested params as dotted keys: {"train.lora.r": "16", ...}."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat |= flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return {prefix: str(value)}


# Files `dvc repro` rewrites: their changes do not make the code "dirty".
PIPELINE_STATE = (":!dvc.lock", ":!metrics", ":!reports")


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's sha (or $LLMOPS_COMMIT, e.g. the pull request's head in CI), with `-dirty`
    when tracked files other than the pipeline state differ; `unknown` outside git."""
    if os.environ.get("LLMOPS_COMMIT"):
        return os.environ["LLMOPS_COMMIT"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *PIPELINE_STATE],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def locked_hash(lock: Path, stage: str, path: str) -> str:
    """The md5 dvc.lock records for `path` among `stage`'s outputs; `unknown` if absent."""
    try:
        outs = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"][stage]["outs"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "unknown"
    return next((o.get("md5", "unknown") for o in outs if o.get("path") == path), "unknown")


@contextmanager
def start(
    run_name: str, params: dict[str, str], tags: dict[str, str], run_id: str | None = None
) -> Iterator[Any]:
    """An MLflow run with system metrics (CPU, memory, GPU; every 10 s unless
    MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL says otherwise); `run_id` continues a run."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    existing = _active_run(run_id) if run_id else None
    if existing is not None:  # continue it, in its own experiment
        mlflow.set_experiment(experiment_id=existing.info.experiment_id)
    else:
        if run_id:
            log.warning(
                "MLflow run %s not found in %s; starting a new run",
                run_id,
                safe_uri(tracking_uri()),
            )
            tags = {**tags, "continues_run": run_id}
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT))
    with mlflow.start_run(
        run_id=existing and existing.info.run_id,
        run_name=None if existing else run_name,
        log_system_metrics=True,
    ) as run:
        if existing is None:
            mlflow.log_params(params)
        mlflow.set_tags(tags)
        yield run


def _active_run(run_id: str):
    """The run if this tracking store has it and it is not deleted, else None."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None
