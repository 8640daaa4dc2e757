"""README's serving examples run as written: the curl command and the `openai` snippet of
"Serve the model", against the real `bentoml serve` of a Bento built by `make bento`'s
module on the worked example's task (its params and prompt, test-sized: a few-step tiny
model, since only the API's shape is checked here, not answer quality). The one change to
the examples: the port, 3000 in README, is a free port here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.bentos import build, served
from tests.synthetic import PARAMS, merged

from llmops.config.task import Task
from llmops.stages.base import base
from llmops.stages.prep import prep, write_splits

pytestmark = pytest.mark.e2e
KEY = "readme-key"
SIZES = {"train": 120, "val": 12, "test": 12}


def readme_blocks(repo: Path) -> dict[str, list[str]]:
    """The fenced code blocks of README's "Serve the model" section, by language."""
    text = (repo / "README.md").read_text()
    section = text.split("## Serve the model", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S):
        blocks.setdefault(lang, []).append(body)
    return blocks


@pytest.fixture(scope="module")
def triage(tmp_path_factory, repo) -> Path:
    """A project on the worked example's task: its prompt and data, test-sized recipe."""
    from llmops.config.params import load_params

    root = tmp_path_factory.mktemp("triage")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    small = {k: PARAMS[k] for k in ("train", "decoding")} | {"base": PARAMS["base"]}
    small["serve"] = {"max_tokens": 64}
    (root / "params.yaml").write_text(yaml.safe_dump(merged(params, small), sort_keys=False))
    shutil.copy(repo / "task.yaml", root / "task.yaml")
    shutil.copytree(repo / "prompts", root / "prompts")
    loaded = load_params(root / "params.yaml")
    with prep(Task.from_params(loaded.task), loaded.prep, repo / "data" / "raw") as result:
        splits = {name: list(result.records(name))[:n] for name, n in SIZES.items()}
    write_splits(splits, root / "data" / "prepared")
    base(loaded, root / "data" / "prepared", root / loaded.task.prompt, root / "models" / "base")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    args = ["--params", "params.yaml", "--data", "data/prepared", "--base", "models/base",
            "--prompt", loaded.task.prompt, "--out", "models/adapter",
            "--checkpoints", "models/checkpoints", "--metrics", "metrics/train.json",
            "--plots", "reports/train"]  # fmt: skip
    subprocess.run([sys.executable, "-m", "llmops.stages.train", *args], cwd=root, env=env,
                   check=True, capture_output=True)  # fmt: skip
    # Lineage reads the eval metrics; the API's shape does not depend on them.
    (root / "metrics" / "eval.json").write_text(json.dumps({"tuned": {"json_valid": 0.0}}))
    return root


@pytest.fixture(scope="module")
def url(triage, tmp_path_factory):
    bento = build(triage, tmp_path_factory.mktemp("bentoml"))
    with served(bento, KEY, triage / "logs") as url:
        yield url


def as_run_here(block: str, url: str) -> str:
    assert "http://127.0.0.1:3000" in block
    return block.replace("http://127.0.0.1:3000", url)


def test_readme_curl_example_works_as_written(url, repo, triage):
    (curl,) = [b for b in readme_blocks(repo)["bash"] if b.startswith("curl")]
    env = {**os.environ, "LLMOPS_API_KEY": KEY}
    done = subprocess.run(["bash", "-c", as_run_here(curl, url)], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    body = json.loads(done.stdout)
    assert body["model"] == "llmops-model" and body["request_id"]
    answer = body["answer"]
    assert set(answer["output"]) == {"category", "priority", "reply"}
    assert answer["usage"]["prompt_tokens"] > 0 and isinstance(answer["parsed"], bool)
    shown = json.loads(readme_blocks(repo)["json"][0].replace("...", ""))  # README's sample
    assert set(shown) == set(body) and set(shown["answer"]) == set(answer)


def test_readme_openai_example_works_as_written(url, repo):
    (snippet,) = readme_blocks(repo)["python"]
    env = {**os.environ, "LLMOPS_API_KEY": KEY}
    done = subprocess.run([sys.executable, "-c", as_run_here(snippet, url)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    content, tokens = done.stdout.rsplit(" ", 1)
    assert isinstance(json.loads(content), dict) and int(tokens) > 0


def test_readme_make_commands_exist(repo):
    (make,) = [b for b in readme_blocks(repo)["bash"] if b.startswith("make")]
    targets = re.findall(r"^make (\w[\w-]*)", make, re.M)
    assert targets == ["bento", "serve"]
    makefile = (repo / "Makefile").read_text()
    assert all(re.search(rf"^{t}: ", makefile, re.M) for t in targets)
