"""End to end: the real `dvc repro` of the whole pipeline in a fresh copy of the repository.

The copy holds what a clone would (git's tracked and unignored files), so this is the
first thing a new user runs; only the model sizes are shrunk to the test config
(tests/conftest.py TEST_PARAMS) so that base and train take seconds. It checks the outputs
and the row accounting, the MLflow run, that a second run does nothing, that the committed
prep state matches what the code produces, and that the default local remote round-trips
the outputs, model weights included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_PARAMS, write_params

pytestmark = pytest.mark.e2e


def sh(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default: mlflow.db in the repository
    # dvc runs stage commands through the shell: the interpreter running the tests is "python".
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "dvc", *args, check=check)


@pytest.fixture(scope="module")
def clone(tmp_path_factory, repo) -> Path:
    """A fresh git repository holding the files a clone of this one would have."""
    dest = tmp_path_factory.mktemp("clone") / "repo"
    listed = sh(repo, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    for rel in filter(None, listed.split("\0")):
        if (repo / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, dest / rel)
    sh(dest, "git", "init", "-q", "-b", "main")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "clone")
    write_params(dest / "params.yaml", TEST_PARAMS)
    sh(dest, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "test")
    return dest


@pytest.fixture(scope="module")
def reproduced(clone) -> subprocess.CompletedProcess:
    return dvc(clone, "repro")


def test_dag_runs_prep_then_base_then_train(clone):
    edges = dvc(clone, "dag", "--dot").stdout
    for edge in ('"prep" -> "base"', '"base" -> "train"', '"prep" -> "train"'):
        assert edge in edges, edges


def test_repro_writes_splits_quarantine_report_and_metrics(clone, reproduced, sample):
    assert "Running stage 'prep'" in reproduced.stdout
    planted = sample[1]
    metrics = json.loads((clone / "metrics" / "prep.json").read_text())
    counts = {}
    for split in ("train", "val", "test"):
        counts[split] = len(
            (clone / "data" / "prepared" / f"{split}.jsonl").read_text().splitlines()
        )
    quarantine = (clone / "data" / "quarantine" / "rejected.jsonl").read_text().splitlines()
    assert counts == metrics["split"]
    assert sum(counts.values()) == planted.clean_rows
    assert len(quarantine) == sum(planted.dirty.values()) == metrics["rows_rejected"]
    assert metrics["rows_in"] == sum(counts.values()) + len(quarantine)
    assert {r: n for r, n in metrics["rejected"].items() if n} == planted.dirty
    assert json.loads(quarantine[0])["source"].startswith("data/raw/export-")
    assert (clone / "reports" / "prep" / "data_report.md").exists()
    assert not sh(clone, "git", "status", "--porcelain", "data/raw").stdout, "raw data changed"


def test_committed_prep_state_matches_a_fresh_run(clone, reproduced, repo):
    # dvc.lock records the hashes of code, params, data and outputs. A fresh run producing
    # other hashes means someone changed the pipeline without `make repro` + commit. Only
    # prep is compared: the model stages ran on the test config here, and weights differ
    # in the last bits between CPUs anyway.
    committed = yaml.safe_load(sh(clone, "git", "show", "HEAD:dvc.lock").stdout)["stages"]
    fresh = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    stale = "stale pipeline state; run `make repro` and commit"
    assert fresh["prep"] == committed["prep"], stale
    changed = sh(clone, "git", "status", "--porcelain", "metrics/prep.json", "reports/prep").stdout
    assert not changed, f"{stale}:\n{changed}"


def test_repro_trains_an_adapter_and_tracks_the_run(clone, reproduced):
    from mlflow.tracking import MlflowClient

    assert "Running stage 'base'" in reproduced.stdout
    assert "Running stage 'train'" in reproduced.stdout
    assert (clone / "models" / "base" / "model.safetensors").exists()
    assert (clone / "models" / "adapter" / "adapter_model.safetensors").exists()
    metrics = json.loads((clone / "metrics" / "train.json").read_text())
    assert metrics["steps"] == TEST_PARAMS["train"]["max_steps"]
    info = json.loads((clone / "models" / "adapter" / "training.json").read_text())
    run = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}").get_run(info["run_id"])
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    prepared = next(o for o in lock["prep"]["outs"] if o["path"] == "data/prepared")
    assert run.data.tags["data_md5"] == prepared["md5"]
    head = sh(clone, "git", "rev-parse", "HEAD").stdout.strip()
    assert run.data.tags["git_commit"].startswith(head)
    assert run.data.metrics["final_val_loss"] == pytest.approx(metrics["val_loss"])
    ignored = sh(clone, "git", "status", "--porcelain", "--ignored", "mlflow.db").stdout
    assert ignored.startswith("!!"), "mlflow.db must be gitignored"


def test_second_repro_does_nothing_and_says_so(clone, reproduced):
    again = dvc(clone, "repro")
    for stage in ("prep", "base", "train"):
        assert f"Stage '{stage}' didn't change, skipping" in again.stdout
    assert "Data and pipelines are up to date." in again.stdout
    assert "Running stage" not in again.stdout


def test_outputs_round_trip_through_the_default_remote(clone, reproduced):
    # The default remote is a folder beside the repository: no credentials needed.
    assert "llmops-dvc-storage" in dvc(clone, "remote", "list").stdout
    dvc(clone, "push")
    assert (clone.parent / "llmops-dvc-storage" / "files" / "md5").is_dir()
    train = (clone / "data" / "prepared" / "train.jsonl").read_bytes()
    adapter = (clone / "models" / "adapter" / "adapter_model.safetensors").read_bytes()
    for out in ("data/prepared", "models/base", "models/adapter"):
        shutil.rmtree(clone / out)
    shutil.rmtree(clone / ".dvc" / "cache")  # so the files must come from the remote
    dvc(clone, "pull")
    assert (clone / "data" / "prepared" / "train.jsonl").read_bytes() == train
    assert (clone / "models" / "adapter" / "adapter_model.safetensors").read_bytes() == adapter
    assert (clone / "models" / "base" / "model.safetensors").exists()
