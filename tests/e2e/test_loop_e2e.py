"""The loop after deploy, end to end: the tests' Bento served by the real `bentoml serve`,
its logs going to a real S3 API on loopback (moto's server), normal then shifted traffic
with feedback (`llmops.watch.simulate`), `make monitor` on both windows read back from the
store, `make harvest`, then the real `dvc repro prep` taking the harvested rows. (The sink's
own outage is tests/e2e/test_logsink_e2e.py's.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmops.watch import simulate
from tests.s3store import BUCKET, Store
from tests.synthetic import write_split_params

pytestmark = pytest.mark.e2e
REQUESTS = 40  # per window: past the tests' monitor.min_requests (20)


def sh(cwd: Path, *command: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def simulated(bento, tmp_path_factory) -> Path:
    """simulate's output folder, the logs having gone to the object store."""
    out = tmp_path_factory.mktemp("simulate")
    store = Store().start()
    patch = pytest.MonkeyPatch()
    try:
        for name, value in {**bento.env, **store.env()}.items():
            patch.setenv(name, value)
        patch.setenv("LLMOPS_LOG_URI", f"s3://{BUCKET}/loop")
        split = str(bento.project / "data" / "prepared" / "train.jsonl")
        simulate.main(["--params", str(bento.project / "params.yaml"), "--data", split,
                       "--train", split, "--bento", bento.tag, "--out", str(out),
                       "--requests", str(REQUESTS)])  # fmt: skip
    finally:
        patch.undo()
        store.stop()
    return out


def test_the_monitor_flags_the_shifted_window_only_and_prep_takes_the_harvest(
    simulated, bento, repo, tmp_path
):
    result = json.loads((simulated / "simulation.json").read_text())
    assert result["logs"] == f"s3://{BUCKET}/loop"  # read back from the store, not the folder
    assert result["problems"] == []
    calm, moved = result["in_distribution"]["figures"], result["shifted"]["figures"]
    assert calm["operations"]["answered"] == moved["operations"]["answered"] == REQUESTS
    assert calm["operations"]["feedback"] == REQUESTS  # a rating or a correction for each
    assert calm["drift"]["verdict"] is False and moved["drift"]["verdict"] is True
    assert "monitor.drift_share" in [c["threshold"] for c in moved["crossed"]]
    drifted = {n for n, c in moved["drift"]["columns"].items() if c["drifted"]}
    assert {"text.chars", "text.oov", "text.non_latin"} <= drifted
    corrections = result["in_distribution_traffic"]["corrections"]
    assert corrections == len(range(0, REQUESTS, simulate.CORRECTED))
    assert result["harvest"]["rows"] == {"kept": corrections}
    (batch,) = (simulated / "raw").glob("harvest-*.jsonl")
    (provenance,) = (simulated / "harvest").glob("harvest-*.json")
    counts = json.loads(provenance.read_text())["counts"]
    assert counts["harvested"] == corrections and json.loads(provenance.read_text())["logs"]

    # The real pipeline's prep stage, in a DVC repository of the project, before and after.
    work = tmp_path / "project"
    shutil.copytree(bento.project / "data" / "raw", work / "data" / "raw")
    shutil.copytree(bento.project / "prompts", work / "prompts")
    shutil.copytree(repo / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo / "dvc.yaml", work / "dvc.yaml")
    write_split_params(work, yaml.safe_load((bento.project / "params.yaml").read_text()))
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    for command in (("git", "init", "-q"), ("dvc", "init", "-q"), ("dvc", "repro", "prep")):
        sh(work, *command)
    before = json.loads((work / "metrics" / "prep.json").read_text())
    shutil.copy(batch, work / "data" / "raw" / batch.name)
    sh(work, "dvc", "repro", "prep")
    after = json.loads((work / "metrics" / "prep.json").read_text())
    assert after["rows_in"] == before["rows_in"] + corrections
    prepared = [json.loads(line) for split in ("train", "val", "test")
                for line in (work / "data" / "prepared" / f"{split}.jsonl").read_text().splitlines()]  # fmt: skip
    harvested = [row for row in prepared if batch.name in row["source"]]
    assert len(harvested) > 0
    # The traffic was the training split's own inputs, so a correction repeats a raw row:
    # prep keeps one of the two and counts the other, nothing goes missing.
    repeated = sum(
        after["rejected"][r] - before["rejected"][r] for r in ("duplicate", "near_duplicate")
    )
    assert after["rows_kept"] - before["rows_kept"] + repeated == corrections
    stored = "".join(p.read_text() for p in (work / "data").rglob("*.jsonl"))
    assert "jane.doe@example.com" not in stored and "<EMAIL>" in batch.read_text()


def test_the_monitor_workflow_opens_the_issue_and_the_retraining_pull_request(
    simulated, bento, repo, tmp_path
):
    """monitor.yml's job replayed (tests/rehearsal.py) on a copy of the repository holding the
    tests' project, reading the logs simulate left in its local folder, against a GitHub API
    on loopback (tests/fakegithub.py)."""
    from tests.e2e.test_pipeline_e2e import copy_repo
    from tests.e2e.test_pipeline_e2e import sh as repo_sh
    from tests.fakegithub import FakeGitHub
    from tests.rehearsal import replay_job

    work = copy_repo(repo, tmp_path / "repo")
    for stale in ("data", "prompts", "examples", "metrics", "reports"):
        shutil.rmtree(work / stale, ignore_errors=True)
    shutil.copytree(bento.project / "data", work / "data")
    # The traffic was the training split's inputs: with its raw rows there, every correction
    # would be a duplicate (harvest skips those); without them, each is new.
    shutil.rmtree(work / "data" / "raw")
    (work / "data" / "raw").mkdir()
    shutil.copytree(bento.project / "prompts", work / "prompts")
    write_split_params(work, yaml.safe_load((bento.project / "params.yaml").read_text()))
    with FakeGitHub(repo="owner/name") as github:
        context = {"vars.LLMOPS_LOG_URI": str(simulated / "logs"), "github.token": github.token,
                   "github.repository": "owner/name", "github.server_url": "https://github.test",
                   "github.run_id": "7", "github.event.repository.default_branch": "main"}  # fmt: skip
        job = replay_job(repo_sh, work, "monitor.yml", "watch", context,
                         {"GITHUB_API_URL": github.url})  # fmt: skip
        assert job is not None
        # The tests' tiny model writes no JSON: the monitor fails on its unparsed share (and
        # drift, as it comes), and every later step still runs (success() || its failure).
        assert job.outcomes["monitor"] == "failure" and job.failed
        assert [o for s, o in job.outcomes.items() if s != "monitor" and o == "failure"] == []
        assert job.ran == ["make install", "make pull", "make monitor", "make monitor-issue",
                           "make harvest", "make retrain-pr"]  # fmt: skip
        (issue,) = github.issues.values()
        figures = json.loads((work / "reports" / "monitor" / "figures.json").read_text())
        crossed = [c["threshold"] for c in figures["crossed"]]
        assert "monitor.max_unparsed_share" in crossed
        assert issue["title"] == "Monitoring: " + ", ".join(crossed)
        assert "https://github.test/owner/name/actions/runs/7" in issue["body"]
        (pull,) = github.pulls
        assert pull["head"].startswith("retrain/harvest-") and pull["base"] == "main"
        corrections = len(range(0, REQUESTS, simulate.CORRECTED))
        assert pull["title"].startswith(f"Retrain on {corrections} corrected answers")
        names = sorted(name for _, name in github.files)
        assert names[0].startswith("data/harvest/harvest-") and names[1].startswith("data/raw/")
