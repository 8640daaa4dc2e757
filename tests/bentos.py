"""Build and serve Bentos of the tests' projects: `make bento`'s module into a private
BentoML home, and the built Bento under the real `bentoml serve` with an API key and a
request-log folder of the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmops.config.params import load_params
from llmops.ship.localserver import running

REPO = Path(__file__).resolve().parents[1]
# The API key every test server requires, and the header that sends it.
KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass(frozen=True)
class Bento:
    """A project packaged by `python -m llmops.ship.bento` into a private BentoML home."""

    tag: str  # the Bento
    model: str  # the model in the model store
    env: dict  # BENTOML_HOME and friends, for bentoml commands on it
    home: Path
    project: Path


def build(project: Path, home: Path) -> Bento:
    """Package `project` (a folder laid out like the repository, after train and eval) and
    build its Bento, as `make bento` does; no `dvc status` check (not a DVC repository)."""
    for name in ("service.py", "bentofile.yaml"):
        shutil.copy(REPO / name, project / name)
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
           "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}  # fmt: skip
    args = ["--params", "params.yaml", "--base", "models/base", "--adapter", "models/adapter",
            "--eval", "metrics/eval.json", "--lock", "dvc.lock", "--bentofile", "bentofile.yaml",
            "--source", str(REPO), "--allow-stale"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "llmops.ship.bento", *args], cwd=project, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    tags = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    return Bento(tags["bento"], tags["model"], env, home, project)


@contextmanager
def served(
    bento: Bento, key: str, logs: Path, server_log: Path | None = None, env: dict | None = None
) -> Iterator[str]:
    """The Bento under `bentoml serve` on a free loopback port, requiring `key` (in the
    variable its params' serve.api_key_env names) and logging requests to `logs` (and its
    own output to `server_log`, when given), with `env` added to its environment; its URL."""
    variable = load_params(bento.project / "params.yaml").serve.api_key_env
    env = {**bento.env, **(env or {}), variable: key, "LLMOPS_LOG_DIR": str(logs)}
    with running(bento.tag, env=env, cwd=bento.project, log=server_log) as url:
        yield url
