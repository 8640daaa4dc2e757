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

from tests.conftest import TEST_PARAMS, merged, write_params

pytestmark = pytest.mark.e2e

# The test config, trained long enough (about 25 s) that the model gets some answers right,
# so that the report has examples that flip between main and a branch.
E2E_PARAMS = merged(
    TEST_PARAMS,
    {
        "base": {"tiny": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
                          "block_length": 128, "batch_size": 16, "steps": 40}},
        "train": {"max_steps": 250, "batch_size": 8, "grad_accum": 1, "learning_rate": 0.01,
                  "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        "eval": {"max_new_tokens": 96},
    },
)  # fmt: skip


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
    write_params(dest / "params.yaml", E2E_PARAMS)
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
    assert metrics["steps"] == E2E_PARAMS["train"]["max_steps"]
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


# --- the pull-request report: main vs a branch that changes a param ----------------------

BRANCH_CHANGE = {"train": {"learning_rate": 0.005}}  # main: 0.01


def commit(cwd: Path, message: str) -> None:
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


@pytest.fixture(scope="module")
def branch(clone, reproduced) -> Path:
    """main with its pipeline state committed, then a branch with a lower learning rate."""
    commit(clone, "pipeline state on main")
    sh(clone, "git", "checkout", "-q", "-b", "lower-lr")
    write_params(clone / "params.yaml", merged(E2E_PARAMS, BRANCH_CHANGE))  # fmt: skip
    dvc(clone, "repro")
    sh(clone, sys.executable, "-m", "llmops.report", "--baseline", "main", "--out", "report.md")
    return clone


def test_report_shows_the_param_change(branch):
    report = (branch / "report.md").read_text()
    assert "| `train.learning_rate` | 0.01 | 0.005 |" in report
    assert "_Prompt templates unchanged._" in report
    assert len(report) < 65_536


def test_report_shows_metric_deltas_against_main(branch):
    report = (branch / "report.md").read_text()
    now = json.loads((branch / "metrics" / "eval.json").read_text())["tuned"]
    main = json.loads(sh(branch, "git", "show", "main:metrics/eval.json").stdout)["tuned"]
    row = next(line for line in report.splitlines() if line.startswith("| test_loss |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == f"{main['test_loss']:.4f}" and cells[2] == f"{now['test_loss']:.4f}"
    assert cells[3].startswith(f"{now['test_loss'] - main['test_loss']:+.4f}")
    assert "```mermaid" in report and "xychart-beta" in report


def test_report_lists_the_flipped_examples(branch):
    from llmops.report import flipped

    report = (branch / "report.md").read_text()
    read = lambda text: [json.loads(x) for x in text.splitlines() if x.strip()]  # noqa: E731
    now = read((branch / "data" / "eval" / "predictions.jsonl").read_text())
    import dvc.api

    main = read(dvc.api.read("data/eval/predictions.jsonl", rev="main", repo=str(branch)))
    fixed, broken = flipped(now, main)
    assert fixed or broken, "the branch changed no example; pick a change that does"
    assert f"**Wrong → right: {len(fixed)}**" in report
    assert f"**Right → wrong: {len(broken)}**" in report
    for _, record in (fixed or broken)[:1]:
        assert f"| {record['id']} |" in report


def set_gates(repo: Path, floors: dict, drops: dict) -> None:
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["eval"]["gates"] = {"min": floors, "max_drop": drops}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))


def test_gate_passes_then_fails_when_tightened_beyond_the_achieved_value(branch):
    # `make gate` itself, with the test's interpreter (-o: don't build a .venv in the copy).
    make = ["make", "-s", "-o", ".venv/.installed", "gate"]
    achieved = json.loads((branch / "metrics" / "eval.json").read_text())["tuned"]
    floors = {"json_valid": achieved["json_valid"], "test_loss": achieved["test_loss"]}
    set_gates(branch, floors, {"category_accuracy": 1.0})
    passed = sh(branch, *make, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "all 3 checked gates pass" in passed.stdout

    set_gates(branch, {**floors, "test_loss": achieved["test_loss"] - 0.001}, {})
    failed = sh(branch, *make, check=False)
    assert failed.returncode != 0
    assert "1 gate(s) failed: test_loss <= " in failed.stdout + failed.stderr
    assert "❌ fail" in failed.stdout
