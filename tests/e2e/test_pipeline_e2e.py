"""End to end: the real `dvc repro` of the whole pipeline in a fresh copy of the repository,
on a task of the tests' own: classification only (one label field, `label`, with intents as
values), CSV files whose columns are named `utterance` and `intent`, and an official test
file pinned whole. The copy holds what a clone would (git's tracked and unignored files) with
the task, prompt and data swapped for this one's, and model sizes shrunk so that base and
train take seconds. It checks the outputs and the row accounting, the MLflow run, that a
second run does nothing, the default remote, and then the pull-request loop: main with its
pipeline state committed, a branch that changes a param, `make report` and `make gate`; and
at the end a rehearsal of the GitHub Actions workflows (tests/rehearsal.py): a pull request's
`model-report` steps, then its merge's `deploy` jobs: the build (verify, gates, Bento, local
blue/green), a merge whose outputs are not on the remote (refused before register), a release
cancelled after register, and a production deploy whose smoke test fails (rolled back, not
promoted), against a real MLflow server and a fake BentoCloud CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from llmops.ship.localserver import free_port
from tests.rehearsal import Job, replay, replay_job
from tests.synthetic import (
    INTENT_PARAMS,
    INTENT_PROMPT,
    intent_rows,
    merged,
    write_csv,
    write_split_params,
)

pytestmark = pytest.mark.e2e

# Trained long enough (about 30 s) that the model has learned the labels (all 80 test rows
# right here), so that a branch can flip examples, and a broken branch can be told from
# noise. The branch below trains at a tenth of the learning rate, and gets few right.
E2E_PARAMS = merged(
    INTENT_PARAMS,
    {
        "base": {"tiny": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
                          "block_length": 128, "batch_size": 16, "steps": 40}},
        "train": {"max_steps": 500, "batch_size": 8, "grad_accum": 1, "learning_rate": 0.003,
                  "lora": {"r": 16, "alpha": 32, "dropout": 0.0}},
    },
)  # fmt: skip
TRAIN_ROWS, TEST_ROWS = 600, 80


def sh(cwd: Path, *cmd: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default: mlflow.db in the repository
    # dvc runs stage commands through the shell: the interpreter running the tests is "python"
    # (unless the caller gives its own PATH), and the copy's own library is the one imported.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env |= extra
    env["PYTHONPATH"] = str(cwd / "src")
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def dvc(cwd: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "dvc", *args, check=check, **env)


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
    write_split_params(dest, E2E_PARAMS)
    (dest / "prompts").mkdir()
    (dest / "prompts" / "intent.jinja").write_text(INTENT_PROMPT)
    rows = intent_rows(TRAIN_ROWS + TEST_ROWS, seed=1)  # distinct utterances
    write_csv(dest / "data" / "raw" / "train.csv", rows[:TRAIN_ROWS])
    write_csv(dest / "data" / "raw" / "official" / "test.csv", rows[TRAIN_ROWS:])
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

BRANCH_CHANGE = {"train": {"learning_rate": 0.0003}}  # main: 0.003


@pytest.fixture(scope="module")
def branch(clone, reproduced) -> Path:
    """main with its pipeline state committed, then a branch with a lower learning rate."""
    commit(clone, "pipeline state on main")
    sh(clone, "git", "checkout", "-q", "-b", "lower-lr")
    write_split_params(clone, merged(E2E_PARAMS, BRANCH_CHANGE))
    dvc(clone, "repro")
    make(clone, "report")
    return clone


def test_report_shows_the_param_change(branch):
    report = (branch / "report.md").read_text()
    assert "| train.learning_rate | 0.003 | 0.0003 |" in report
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
        expected = "±0" if abs(change) < 5e-5 else f"{change:+.4f}"
        assert cells[3].startswith(expected), (metric, cells)
    assert "```mermaid" in report and "xychart-beta" in report


def flips_from_git(repo: Path):
    """(wrong -> right, right -> wrong) computed from main's and the working tree's records."""
    from llmops.config.params import load_params
    from llmops.config.task import Task
    from llmops.evaluate.predictions import parse_examples
    from llmops.evaluate.stats import pair
    from llmops.report.flips import flipped

    task = Task.from_params(load_params(repo / "params.yaml").task)
    main = parse_examples(sh(repo, "git", "show", "main:metrics/eval_examples.csv").stdout)
    now = parse_examples((repo / "metrics" / "eval_examples.csv").read_text())
    return flipped(task, pair(main, now))


def test_report_lists_the_flipped_examples(branch):
    report = (branch / "report.md").read_text()
    fixed, broken = flips_from_git(branch)
    assert fixed or broken, "the branch changed no example; pick a change that does"
    assert "### Examples that flipped (label right vs not)" in report
    assert f"**Wrong → right: {len(fixed)}**" in report
    assert f"**Right → wrong: {len(broken)}**" in report
    for _, row in (fixed or broken)[:1]:
        assert f"| {row['id']} |" in report


def test_the_flipped_examples_need_no_dvc_remote(branch):
    # Neither the cache nor any remote holds main's predictions: the records in git suffice.
    shutil.rmtree(branch / ".dvc" / "cache", ignore_errors=True)
    dvc(branch, "remote", "remove", "local")
    try:
        make(branch, "report")
        report = (branch / "report.md").read_text()
        fixed, _ = flips_from_git(branch)
        assert f"**Wrong → right: {len(fixed)}**" in report
        assert "its labels come from its record" in report
    finally:
        sh(branch, "git", "checkout", "--", ".dvc/config")


def set_gates(repo: Path, floors: dict, drops: dict) -> None:
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["gate"] = {"min": floors, "max_drop": drops, "confidence": 0.95}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))


# --- noise or regression: main vs a branch that changes nothing meaningful, and one that --
# --- breaks training ------------------------------------------------------------------------


def branch_off(repo: Path, name: str, change: dict) -> Path:
    """A branch from main with `change` to params, reproduced; returns the repo."""
    sh(repo, "git", "checkout", "-q", "-f", "main")
    sh(repo, "git", "checkout", "-q", "-b", name)
    write_split_params(repo, merged(E2E_PARAMS, change))
    dvc(repo, "repro")
    return repo


def test_make_noise_measures_the_training_noise(branch):
    sh(branch, "git", "checkout", "-q", "-f", "main")
    dvc(branch, "repro")  # main's own outputs back in the workspace
    make(branch, "noise", "SEEDS=1")
    noise = json.loads((branch / "benchmarks" / "results" / "noise.json").read_text())
    assert noise["runs"] == ["as is", "train.seed 1", "1 thread"]
    spread = noise["spread"]["label_accuracy"]
    assert len(spread["values"]) == 3 and spread["std"] >= 0
    as_is = json.loads((branch / "metrics" / "eval.json").read_text())["tuned"]
    assert spread["values"][0] == as_is["label_accuracy"]  # same machine, same run
    commit(branch, "training noise measured on main")


def test_main_rerun_as_on_another_machine_passes_and_shows_no_significant_delta(branch):
    # main, unchanged, trained and evaluated again with one CPU thread instead of two: float
    # sums round differently, as on another CPU model, and training amplifies that. The
    # metrics may move; nothing should be flagged.
    repo = branch_off(branch, "one-thread", {})
    dvc(repo, "repro", "-f", "train", "eval", OMP_NUM_THREADS="1")
    gated = make(repo, "gate", check=False)
    assert gated.returncode == 0, gated.stdout + gated.stderr
    make(repo, "report")
    report = (repo / "report.md").read_text()
    assert "🔴" not in report.split("### Quality gates")[1].split("### Params")[0]
    row = next(line for line in report.splitlines() if line.startswith("| label_accuracy |"))
    assert "≈ noise" in row or "±0" in row, row


def test_a_real_regression_fails_its_gate_naming_metric_drop_interval_threshold(branch):
    repo = branch_off(branch, "too-few-steps", {"train": {"max_steps": 8}})
    failed = make(repo, "gate", check=False)
    assert failed.returncode != 0
    message = failed.stdout + failed.stderr
    assert "gate(s) failed: label_accuracy drop <= 0.05 vs baseline" in message
    assert "Δ -" in message and "p(worse) 0.000" in message
    make(repo, "report")
    row = next(line for line in (repo / "report.md").read_text().splitlines()
               if line.startswith("| label_accuracy |"))  # fmt: skip
    assert row.rstrip(" |").split("|")[4].strip().endswith("🔴"), row


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
    for payload in ("x;echo INJECTED", "$(shell echo INJECTED)", "`echo INJECTED`"):
        done = make(branch, "gate", f"BASELINE={payload}", check=False)
        assert done.returncode != 0, done.stdout + done.stderr
        assert "is not a valid git ref name or commit id" in done.stderr, done.stderr
        assert "INJECTED" not in done.stdout.replace(payload, "")  # no echo ever ran


# --- the workflows, rehearsed: a pull request that tightens a gate, then its merge --------


@pytest.fixture(scope="module")
def pull_request(branch) -> dict:
    """main as committed, a branch that tightens a gate (no stage re-runs), and the
    pull-request workflow's steps replayed on it."""
    sh(branch, "git", "checkout", "-q", "-f", "main")
    dvc(branch, "checkout")  # main's outputs back from the cache
    sh(branch, "git", "checkout", "-q", "-b", "tighter-gate")
    params = yaml.safe_load((branch / "params.yaml").read_text())
    gates = merged(params, {"gate": {"min": {"json_valid": 0.5}}})
    (branch / "params.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    commit(branch, "gate: json_valid floor")
    head = sh(branch, "git", "rev-parse", "HEAD").stdout.strip()
    context = {"github.base_ref": "main", "github.event.pull_request.head.sha": head,
               "github.event.pull_request.number": "7"}  # fmt: skip
    summary = branch.parent / "step-summary.md"
    summary.write_text("")
    # Actions fetches the base branch as origin/main.
    sh(branch, "git", "update-ref", "refs/remotes/origin/main", "main")
    ran = replay(sh, branch, "model-report.yml", "pipeline", context,
                 {"GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    return {"ran": ran, "summary": summary, "head": head}


def test_the_pull_request_workflow_runs_pipeline_report_and_gate(branch, pull_request):
    assert pull_request["ran"] == ["make pull", "make repro", "make report", "make summary",
                                   "make pr-meta", "make gate"]  # fmt: skip
    report = (branch / "report.md").read_text()
    assert "| gate.min.json_valid |" in report
    assert pull_request["summary"].read_text() == report
    assert json.loads((branch / "pr.json").read_text()) == {"number": 7}


@pytest.fixture(scope="module")
def merge(branch, pull_request, tmp_path_factory) -> dict:
    """The pull request merged into main; what the deploy workflow's jobs are given."""
    sh(branch, "git", "checkout", "-q", "main")
    before = sh(branch, "git", "rev-parse", "HEAD").stdout.strip()
    sh(branch, "git", "merge", "-q", "--ff-only", "tighter-gate")
    context = {"github.sha": pull_request["head"], "github.ref": "refs/heads/main",
               "github.event.before": before}  # fmt: skip
    return {"context": context, "home": tmp_path_factory.mktemp("bentoml")}


def deploy_env(root: Path, home: Path) -> dict:
    return {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
            "DEPLOY_PORT": str(free_port()), "LLMOPS_LOG_DIR": str(root / "logs")}  # fmt: skip


def replay_build(repo: Path, context: dict, env: dict, **how) -> Job:
    try:
        return replay_job(sh, repo, "deploy.yml", "build", context, env, **how)
    finally:
        sh(repo, "make", "-s", "deploy-stop", check=False, **env)


@pytest.fixture(scope="module")
def mlflow_server(branch, tmp_path_factory) -> str:
    """A real MLflow tracking server on loopback over the clone's own store (where its
    train runs are), as a team's server would hold them."""
    port = free_port()
    log = (tmp_path_factory.mktemp("mlflow-server") / "server.log").open("w")
    mlflow = Path(sys.executable).with_name("mlflow")
    process = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port",
                                str(port), "--backend-store-uri", f"sqlite:///{branch}/mlflow.db",
                                "--workers", "1"], cwd=branch, stdout=log, stderr=log)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, Path(log.name).read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def aliases(url: str, repo: Path) -> dict[str, str]:
    """The aliases of `repo`'s registered model (params serve.name) on the server at `url`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        name = yaml.safe_load((repo / "params.yaml").read_text())["serve"]["name"]
        return dict(MlflowClient(tracking_uri=url).get_registered_model(name).aliases or {})
    except MlflowException:
        return {}  # not registered at all


@pytest.fixture(scope="module")
def built(branch, merge, mlflow_server) -> Job:
    """The merge's build job with an MLflow server configured (and nothing else), cancelled
    right after `make register`, as a person pressing "Cancel" there would."""
    context = merge["context"] | {"vars.MLFLOW_TRACKING_URI": mlflow_server}
    env = deploy_env(branch.parent, merge["home"])
    return replay_build(branch, context, env, cancel_after="make register")


def test_the_merge_workflow_verifies_gates_builds_rehearses_and_registers(branch, merge, built):
    assert built.cancelled and not built.failed, "\n".join(built.errors)
    # The outputs dvc.lock records are all here: nothing is reproduced.
    assert built.ran == ["make install", "make release-plan", "make reviewed", "make gate",
                         "make bento", "make deploy", "make deploy-stop",
                         "make register"], built.ran  # fmt: skip
    plan = built.step_outputs["plan"]
    assert plan["mlflow_server"] == "true", plan
    for feature in ("dvc_remote", "bentocloud", "registry"):
        assert plan[feature] == "false", plan
    assert built.step_outputs["reviewed"] == {"exact": "true"}
    assert built.outputs["bento"].startswith("llmops-service:"), built.outputs
    assert built.outputs["model_version"] and built.outputs["bentocloud"] == "false"
    assert built.outputs["registered_version"] == "1"
    assert any(b.name != "latest" for b in (merge["home"] / "bentos" / "llmops-service").iterdir())


def test_a_release_cancelled_after_register_leaves_the_champion_where_it_was(
    branch, merge, built, mlflow_server
):
    assert aliases(mlflow_server, branch) == {"challenger": "1"}  # registered, not serving
    context = merge["context"] | {"vars.MLFLOW_TRACKING_URI": mlflow_server}
    for job in ("staging", "production"):  # a cancelled run deploys nothing
        assert replay_job(sh, branch, "deploy.yml", job, context, {}, {"build": built}) is None
    assert aliases(mlflow_server, branch) == {"challenger": "1"}


def test_a_merge_whose_outputs_are_not_on_the_remote_is_refused_before_register(
    branch, merge, mlflow_server, tmp_path
):
    # A fresh runner: the merged commit cloned, no outputs, no DVC cache, and a DVC remote
    # that never received them. The registry is configured, so this is a real release.
    before = aliases(mlflow_server, branch)
    runner = tmp_path / "runner" / "repo"
    runner.parent.mkdir()
    sh(tmp_path, "git", "clone", "-q", str(branch), str(runner))
    home = tmp_path / "bentoml"
    context = merge["context"] | {"vars.DVC_REMOTE": "local",
                                  "vars.MLFLOW_TRACKING_URI": mlflow_server}  # fmt: skip
    build = replay_build(runner, context, deploy_env(tmp_path, home))
    assert build.failed
    assert build.ran == ["make install", "make release-plan", "make reviewed", "make deploy-stop"]
    error = build.errors[0]
    assert "refusing to release: DVC remote 'local' does not hold the outputs" in error
    assert "nothing was retrained, registered or deployed" in error
    assert not (runner / "models" / "adapter").exists()  # not retrained
    assert not (home / "bentos").exists()  # nothing packaged
    assert aliases(mlflow_server, runner) == before  # nothing registered


def test_a_deployed_service_failing_its_smoke_test_is_rolled_back_and_nothing_promoted(
    branch, merge, built, mlflow_server, tmp_path
):
    # BentoCloud cannot be reached from a test: its CLI is the fake (tests/fakecloud.py),
    # running an older Bento. The endpoint is the real Bento under `bentoml serve`, which
    # serves another model version than the one this release expects: a rollout that did
    # not take.
    from llmops.ship.localserver import running
    from tests.fakecloud import FakeCloud, install

    bin_dir = install(tmp_path / "bin").parent
    key_env = yaml.safe_load((branch / "params.yaml").read_text())["serve"]["api_key_env"]
    secret = {"name": "llmops-api-key", "content": {"type": "env", "stage": "runtime",
                                                    "items": [{"key": key_env}]}}  # fmt: skip
    cloud = FakeCloud(tmp_path)
    cloud.current.write_text("llmops-service:before")
    served_env = {"BENTOML_HOME": str(merge["home"]), "BENTOML_DO_NOT_TRACK": "true",
                  key_env: "rehearsal-key", "LLMOPS_LOG_DIR": str(tmp_path / "logs")}  # fmt: skip
    build = Job(outputs={"bento": built.outputs["bento"], "model_version": "0" * 16,
                         "bentocloud": "true", "mlflow_server": "true",
                         "image_pushed": "false"})  # fmt: skip
    context = merge["context"] | {
        "vars.MLFLOW_TRACKING_URI": mlflow_server, "vars.BENTOCLOUD_DEPLOYMENT": "prod",
        "secrets.BENTOML_CLOUD_API_KEY": "cloud-key", "secrets.LLMOPS_API_KEY": "rehearsal-key",
    }  # fmt: skip
    with running(built.outputs["bento"], env={**os.environ, **served_env}, cwd=branch) as url:
        env = served_env | {
            "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "FAKE_BENTOML_LOG": str(cloud.log), "FAKE_BENTOML_CURRENT": str(cloud.current),
            "FAKE_BENTOML_SECRETS": json.dumps([secret]), "DEPLOY_URL": url,
            "DEPLOY_POLL_S": "0.2",
        }  # fmt: skip
        production = replay_job(sh, branch, "deploy.yml", "production", context, env,
                                {"build": build})  # fmt: skip
    assert production is not None and production.failed
    assert production.ran[:3] == ["make install", "make deploy-cloud", "make smoke-deployed"], (
        production.errors
    )
    assert production.ran[3:] == ["make rollback-cloud"]
    assert "FAIL version" in production.errors[0] and "0" * 16 in production.errors[0]
    assert cloud.bento() == "llmops-service:before"  # put back
    assert aliases(mlflow_server, branch).get("champion") is None  # never promoted


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
