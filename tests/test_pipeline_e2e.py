"""End to end: the real `dvc repro` of the whole pipeline in a fresh copy of the repository,
on a task of the tests' own: classification only (one label field, `label`, with intents as
values), CSV files whose columns are named `utterance` and `intent`, and an official test
file pinned whole. The copy holds what a clone would (git's tracked and unignored files) with
the task, prompt and data swapped for this one's, and model sizes shrunk so that base and
train take seconds. It checks the outputs and the row accounting, the MLflow run, that a
second run does nothing, the default remote, and then the pull-request loop: main with its
pipeline state committed, a branch that changes a param, `make report` and `make gate`.
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

from tests.synthetic import INTENT_PARAMS, INTENT_PROMPT, intent_rows, merged, write_csv

pytestmark = pytest.mark.e2e

# Trained long enough (about 25 s) that the model gets some answers right, so that the
# report has examples that flip between main and a branch.
E2E_PARAMS = merged(
    INTENT_PARAMS,
    {
        "base": {"tiny": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
                          "block_length": 128, "batch_size": 16, "steps": 40}},
        "train": {"max_steps": 250, "batch_size": 8, "grad_accum": 1, "learning_rate": 0.01,
                  "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
    },
)  # fmt: skip
TRAIN_ROWS, TEST_ROWS = 600, 80


def sh(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default: mlflow.db in the repository
    # dvc runs stage commands through the shell: the interpreter running the tests is "python",
    # and the copy's own library is the one imported.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(cwd / "src")
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "dvc", *args, check=check)


def make(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # The test's interpreter is on PATH; -o: don't build a .venv in the copy.
    return sh(cwd, "make", "-s", "-o", ".venv/.installed", *args, check=check)


def commit(cwd: Path, message: str) -> None:
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


def copy_repo(repo: Path, dest: Path) -> Path:
    """The files a clone of the repository would have, in a new git repository."""
    listed = sh(repo, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    for rel in filter(None, listed.split("\0")):
        if (repo / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, dest / rel)
    sh(dest, "git", "init", "-q", "-b", "main")
    return dest


@pytest.fixture(scope="module")
def clone(tmp_path_factory, repo) -> Path:
    """A copy of the repository with the intent task in place of the project's own."""
    dest = copy_repo(repo, tmp_path_factory.mktemp("clone") / "repo")
    for stale in ("data/raw", "prompts", "metrics", "reports", "examples"):
        shutil.rmtree(dest / stale, ignore_errors=True)
    (dest / "dvc.lock").unlink(missing_ok=True)
    (dest / "params.yaml").write_text(yaml.safe_dump(E2E_PARAMS, sort_keys=False))
    (dest / "prompts").mkdir()
    (dest / "prompts" / "intent.jinja").write_text(INTENT_PROMPT)
    write_csv(dest / "data" / "raw" / "train.csv", intent_rows(TRAIN_ROWS, seed=1))
    write_csv(dest / "data" / "raw" / "official" / "test.csv", intent_rows(TEST_ROWS, 2, True))
    commit(dest, "intent task")
    return dest


@pytest.fixture(scope="module")
def reproduced(clone) -> subprocess.CompletedProcess:
    return dvc(clone, "repro")


def test_dag_runs_prep_base_train_eval(clone):
    edges = dvc(clone, "dag", "--dot").stdout
    for edge in ('"prep" -> "base"', '"base" -> "train"', '"train" -> "eval"'):
        assert edge in edges, edges


def test_repro_prepares_the_csv_data_with_the_test_file_pinned(clone, reproduced):
    assert "Running stage 'prep'" in reproduced.stdout
    metrics = json.loads((clone / "metrics" / "prep.json").read_text())
    rows = {s: (clone / "data" / "prepared" / f"{s}.jsonl").read_text().splitlines()
            for s in ("train", "val", "test")}  # fmt: skip
    assert {s: len(r) for s, r in rows.items()} == metrics["split"]
    assert metrics["split"]["test"] == TEST_ROWS
    assert metrics["rows_in"] == TRAIN_ROWS + TEST_ROWS == metrics["rows_kept"]
    first = json.loads(rows["test"][0])
    assert set(first) == {"id", "text", "label", "source"}
    assert first["source"].startswith("data/raw/official/test.csv:")
    assert set(metrics["labels"]) == {"label"}
    report = (clone / "reports" / "prep" / "data_report.md").read_text()
    assert "## `label` per split" in report


def test_repro_trains_evaluates_and_tracks_the_run(clone, reproduced):
    from mlflow.tracking import MlflowClient

    for stage in ("base", "train", "eval"):
        assert f"Running stage '{stage}'" in reproduced.stdout
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
    evaluated = json.loads((clone / "metrics" / "eval.json").read_text())["tuned"]
    assert {"label_accuracy", "label_macro_f1", "label_valid_label"} <= set(evaluated)
    assert not any(k.startswith(("topic", "sentiment", "summary")) for k in evaluated)
    assert run.data.metrics["test/tuned/label_accuracy"] == pytest.approx(
        evaluated["label_accuracy"]
    )
    assert (clone / "reports" / "eval" / "confusion" / "label.csv").exists()
    ignored = sh(clone, "git", "status", "--porcelain", "--ignored", "mlflow.db").stdout
    assert ignored.startswith("!!"), "mlflow.db must be gitignored"


def test_second_repro_does_nothing_and_says_so(clone, reproduced):
    again = dvc(clone, "repro")
    for stage in ("prep", "base", "train", "eval"):
        assert f"Stage '{stage}' didn't change, skipping" in again.stdout
    assert "Data and pipelines are up to date." in again.stdout


def test_a_prompt_edit_reruns_the_stages_that_render_it(clone, reproduced):
    status = dvc(clone, "status", "--json")
    assert json.loads(status.stdout) == {}
    prompt = clone / "prompts" / "intent.jinja"
    original = prompt.read_text()
    prompt.write_text(original.replace("Classify the request.", "Classify this request."))
    try:
        changed = json.loads(dvc(clone, "status", "--json").stdout)
        # prep does not render prompts; eval follows through the adapter, which saves the
        # template it was trained with.
        assert set(changed) == {"base", "train"}
    finally:
        prompt.write_text(original)


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


# --- the pull-request report: main vs a branch that changes a param ----------------------

BRANCH_CHANGE = {"train": {"learning_rate": 0.005}}  # main: 0.01


@pytest.fixture(scope="module")
def branch(clone, reproduced) -> Path:
    """main with its pipeline state committed, then a branch with a lower learning rate."""
    commit(clone, "pipeline state on main")
    sh(clone, "git", "checkout", "-q", "-b", "lower-lr")
    (clone / "params.yaml").write_text(
        yaml.safe_dump(merged(E2E_PARAMS, BRANCH_CHANGE), sort_keys=False)
    )
    dvc(clone, "repro")
    make(clone, "report")
    return clone


def test_report_shows_the_param_change(branch):
    report = (branch / "report.md").read_text()
    assert "| `train.learning_rate` | 0.01 | 0.005 |" in report
    assert "_Prompt templates unchanged._" in report
    assert len(report) < 65_536


def test_report_shows_the_tasks_metric_deltas_against_main(branch):
    report = (branch / "report.md").read_text()
    now = json.loads((branch / "metrics" / "eval.json").read_text())["tuned"]
    main = json.loads(sh(branch, "git", "show", "main:metrics/eval.json").stdout)["tuned"]
    for metric in ("test_loss", "label_accuracy"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {metric} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == f"{main[metric]:.4f}" and cells[2] == f"{now[metric]:.4f}"
        change = now[metric] - main[metric]
        assert cells[3] == "±0" if abs(change) < 5e-5 else cells[3].startswith(f"{change:+.4f}")
    assert "```mermaid" in report and "xychart-beta" in report


def test_report_lists_the_flipped_examples(branch):
    import dvc.api

    from llmops.params import load_params
    from llmops.predictions import parse_predictions, read_predictions
    from llmops.report import flipped
    from llmops.task import Task

    report = (branch / "report.md").read_text()
    task = Task.from_params(load_params(branch / "params.yaml").task)
    now = read_predictions(branch / "data" / "eval" / "predictions.jsonl")
    main = parse_predictions(
        dvc.api.read("data/eval/predictions.jsonl", rev="main", repo=str(branch))
    )
    fixed, broken = flipped(task, now, main)
    assert fixed or broken, "the branch changed no example; pick a change that does"
    assert "### Examples that flipped (label right vs not)" in report
    assert f"**Wrong → right: {len(fixed)}**" in report
    assert f"**Right → wrong: {len(broken)}**" in report
    for _, record in (fixed or broken)[:1]:
        assert f"| {record.id} |" in report


def set_gates(repo: Path, floors: dict, drops: dict) -> None:
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["gate"] = {"min": floors, "max_drop": drops}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))


def test_gate_passes_then_fails_when_tightened_beyond_the_achieved_value(branch):
    achieved = json.loads((branch / "metrics" / "eval.json").read_text())["tuned"]
    floors = {"json_valid": achieved["json_valid"], "test_loss": achieved["test_loss"]}
    set_gates(branch, floors, {"label_accuracy": 1.0})
    passed = make(branch, "gate", check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "all 3 checked gates pass" in passed.stdout

    set_gates(branch, {**floors, "test_loss": achieved["test_loss"] - 0.001}, {})
    failed = make(branch, "gate", check=False)
    assert failed.returncode != 0
    assert "1 gate(s) failed: test_loss <= " in failed.stdout + failed.stderr
    assert "❌ fail" in failed.stdout

    set_gates(branch, {"category_accuracy": 0.5}, {})
    unknown = make(branch, "gate", check=False)
    assert unknown.returncode != 0
    assert "gate.min.category_accuracy: no such metric for this task" in unknown.stderr
    assert "expected one of: json_valid, label_accuracy" in unknown.stderr


def test_a_baseline_name_is_never_run_as_shell(branch):
    set_gates(branch, {"json_valid": 0.0}, {})
    done = make(branch, "gate", "BASELINE=x;echo INJECTED", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no metrics/eval.json at x;echo INJECTED: regression gates skipped" in done.stdout
    assert "\nINJECTED" not in done.stdout  # the echo never ran


# --- the project's own committed pipeline state --------------------------------------------


def test_committed_prep_state_matches_a_fresh_run(tmp_path, repo):
    # dvc.lock records the hashes of code, params, data and outputs. A fresh run producing
    # other hashes means someone changed the pipeline without `make repro` + commit. Only
    # prep is compared (fast, and exact on any machine): weights differ in the last bits
    # between CPUs.
    copy = copy_repo(repo, tmp_path / "repo")
    stale = "stale or missing pipeline state; run `make repro` and commit"
    assert (copy / "dvc.lock").exists(), stale
    commit(copy, "as committed")
    dvc(copy, "repro", "prep")
    committed = yaml.safe_load(sh(copy, "git", "show", "HEAD:dvc.lock").stdout)["stages"]
    fresh = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]
    assert fresh["prep"] == committed["prep"], stale
    changed = sh(copy, "git", "status", "--porcelain", "metrics/prep.json", "reports/prep").stdout
    assert not changed, f"{stale}:\n{changed}"
