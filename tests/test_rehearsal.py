"""A local rehearsal of the GitHub Actions workflows (Actions cannot run here): in a new git
repository made from this one (the tests' intent task in place of the project's), main
with its pipeline state committed and a pull-request branch, the `run:` steps of the
pull-request workflow (model-report) are run in order, with the environment the workflow
gives them, then those of the merge workflow (deploy) whose `if:` holds on a machine with
no DVC remote, MLflow server, container engine or cloud: plan, pull, repro, bento, the
local blue/green deploy with its smoke test, and its stop. Steps that use an action
(checkout, caches, artefacts) are GitHub's, not the repository's, and are not replayed."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import yaml

from tests.synthetic import INTENT_PROMPT, intent_rows, merged, write_csv
from tests.test_pipeline_e2e import E2E_PARAMS, TEST_ROWS, TRAIN_ROWS, commit, copy_repo, dvc, sh

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
PR_NUMBER = "7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(value: str, context: dict[str, str]) -> str:
    """A workflow value with its ${{ ... }} expressions filled from `context`."""

    def one(match: re.Match) -> str:
        expr = match.group(1).strip()
        name = re.split(r"\s*\|\|\s*", expr)[0]
        if name.startswith(("vars.", "secrets.")):
            return context.get(name, "")
        return context[name]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def holds(condition: str | None, outputs: dict[str, dict], env: dict[str, str]) -> bool:
    """The `if:` of a step, for the conditions the workflows use (`outputs`: by step id)."""
    if condition is None:
        return True
    expr = condition.replace("${{", "").replace("}}", "")
    expr = re.sub(r"steps\.(\w+)\.outputs\.(\w+)",
                  lambda m: repr(outputs.get(m.group(1), {}).get(m.group(2), "")), expr)  # fmt: skip
    expr = re.sub(r"env\.(\w+)", lambda m: repr(env.get(m.group(1), "")), expr)
    expr = re.sub(r"steps\.\w+\.conclusion", "'success'", expr)
    expr = expr.replace("always()", "True").replace("failure()", "False")
    expr = expr.replace("!cancelled()", "True").replace("&&", " and ").replace("||", " or ")
    return bool(eval(expr, {"__builtins__": {}}))


def replay(repo: Path, workflow: str, job: str, context: dict, extra_env: dict) -> list[str]:
    """Run the job's `run:` steps in order; return the commands run (failures raise)."""
    data = yaml.safe_load((REPO / ".github" / "workflows" / workflow).read_text())
    spec = data["jobs"][job]
    env = {k: render(v, context) for k, v in spec.get("env", {}).items()} | extra_env
    env["MAKEFLAGS"] = "--old-file=.venv/.installed"  # the tests' environment, not a new .venv
    outputs: dict[str, dict] = {}
    ran = []
    for step in spec["steps"]:
        step_env = env | {k: render(v, context) for k, v in step.get("env", {}).items()}
        if "run" not in step or not holds(step.get("if"), outputs, step_env):
            continue
        output_file = repo.parent / f"{workflow}-{len(ran)}.out"
        output_file.write_text("")
        step_env |= {"GITHUB_OUTPUT": str(output_file)}
        sh(repo, "bash", "-eo", "pipefail", "-c", step["run"], **step_env)
        if step.get("id"):
            lines = output_file.read_text().splitlines()
            outputs[step["id"]] = dict(line.split("=", 1) for line in lines if "=" in line)
        ran.append(step["run"])
    return ran


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """main with the intent task's pipeline state committed, as after a merge."""
    dest = copy_repo(REPO, tmp_path_factory.mktemp("rehearsal") / "repo")
    for stale in ("data/raw", "prompts", "metrics", "reports", "examples"):
        sh(dest, "rm", "-rf", stale)
    (dest / "dvc.lock").unlink(missing_ok=True)
    (dest / "params.yaml").write_text(yaml.safe_dump(E2E_PARAMS, sort_keys=False))
    (dest / "prompts").mkdir()
    (dest / "prompts" / "intent.jinja").write_text(INTENT_PROMPT)
    rows = intent_rows(TRAIN_ROWS + TEST_ROWS, seed=1)
    write_csv(dest / "data" / "raw" / "train.csv", rows[:TRAIN_ROWS])
    write_csv(dest / "data" / "raw" / "official" / "test.csv", rows[TRAIN_ROWS:])
    dvc(dest, "repro")
    commit(dest, "intent task and its pipeline state")
    return dest


@pytest.fixture(scope="module")
def pull_request(project) -> dict:
    """A branch that tightens a gate (no stage re-runs), and the pull-request workflow."""
    sh(project, "git", "checkout", "-q", "-b", "tighter-gate")
    params = yaml.safe_load((project / "params.yaml").read_text())
    gates = merged(params, {"gate": {"min": {"json_valid": 0.5}}})
    (project / "params.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    commit(project, "gate: json_valid floor")
    head = sh(project, "git", "rev-parse", "HEAD").stdout.strip()
    context = {"github.base_ref": "main", "github.event.pull_request.head.sha": head,
               "github.event.pull_request.number": PR_NUMBER}  # fmt: skip
    summary = project.parent / "step-summary.md"
    summary.write_text("")
    # Actions checks out the merge commit with the base branch fetched as origin/main.
    sh(project, "git", "update-ref", "refs/remotes/origin/main", "main")
    ran = replay(project, "model-report.yml", "pipeline", context,
                 {"GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    return {"ran": ran, "summary": summary, "head": head}


def test_the_pull_request_workflow_runs_pipeline_report_and_gate(project, pull_request):
    assert pull_request["ran"] == ["make pull", "make repro", "make report", "make summary",
                                   "make pr-meta", "make gate"]  # fmt: skip
    report = (project / "report.md").read_text()
    assert "| `gate.min.json_valid` |" in report or "json_valid" in report
    assert pull_request["summary"].read_text() == report
    assert json.loads((project / "pr.json").read_text()) == {"number": int(PR_NUMBER)}
    assert "no DVC_REMOTE" in sh(project, "make", "-s", "-o", ".venv/.installed", "pull").stdout


def test_the_merge_workflow_plans_builds_deploys_and_smoke_tests(project, pull_request,
                                                                 tmp_path_factory):  # fmt: skip
    sh(project, "git", "checkout", "-q", "main")
    sh(project, "git", "merge", "-q", "--ff-only", "tighter-gate")
    home = tmp_path_factory.mktemp("bentoml")
    port = str(free_port())
    context = {"github.sha": pull_request["head"]}
    extra = {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "DEPLOY_PORT": port,
             "LLMOPS_LOG_DIR": str(project.parent / "logs")}  # fmt: skip
    try:
        ran = replay(project, "deploy.yml", "release", context, extra)
    finally:
        sh(project, "make", "-s", "-o", ".venv/.installed", "deploy-stop", check=False, **extra)
    assert ran == ["make release-plan", "make pull", "make repro", "make bento", "make deploy",
                   "make deploy-stop"], ran  # fmt: skip
    plan = (project.parent / "deploy.yml-0.out").read_text()
    for feature in ("dvc_remote", "mlflow_server", "bentocloud", "registry"):
        assert f"{feature}=false" in plan, plan
    bentos = list((home / "bentos" / "llmops-service").iterdir())
    assert any(b.name != "latest" for b in bentos)
