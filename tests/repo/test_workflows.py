"""The GitHub Actions workflows: actionlint and zizmor find nothing, every `run:` step is a
make target or an llmops module that exists, and the security rules hold: least-privilege
permissions, no pull_request_target, no job that runs pull-request code holds a write
token or a secret, actions pinned to a commit with their version beside it, no event
expression inside a script (an expression goes through the environment, and make never
expands one), concurrency on pull-request workflows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
WRITE = re.compile(r":\s*write")


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(path: Path):
    for name, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


def targets() -> set[str]:
    text = "".join((REPO / name).read_text() for name in ("Makefile", "ci.mk"))
    return set(re.findall(r"^([a-z][a-z0-9-]*):.*## ", text, re.M))


def test_there_are_the_workflows_docs_ci_describes():
    names = {p.stem for p in WORKFLOWS}
    assert names == {"ci", "model-report", "model-report-comment", "full-run", "deploy", "monitor"}
    ci_doc = (REPO / "docs" / "ci.md").read_text()
    assert all(f"{name}.yml" in ci_doc for name in names)


def test_actionlint_finds_nothing():
    done = subprocess.run([str(BIN / "actionlint"), *map(str, WORKFLOWS)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("persona", ["pedantic", "auditor"])
def test_zizmor_finds_nothing(persona):
    done = subprocess.run([str(BIN / "zizmor"), "--offline", f"--persona={persona}",
                           "--format=plain", ".github/workflows"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_every_finding_ignored_inline_says_why():
    for path in WORKFLOWS:  # each finding ignored inline says why, on the same line
        for line in path.read_text().splitlines():
            if "zizmor: ignore[" in line:
                reason = line.split("zizmor: ignore[", 1)[1].partition("]")[2].strip()
                assert len(reason.split()) >= 3, f"{path.name}: {line.strip()}"


def test_zizmor_catches_an_unsafe_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non: pull_request_target\npermissions: write-all\njobs:\n  t:\n"
        "    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    done = subprocess.run([str(BIN / "zizmor"), "--offline", str(bad.parent)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0
    for audit in ("dangerous-triggers", "template-injection", "unpinned-uses"):
        assert audit in out, audit


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_a_make_target_or_an_llmops_module(path):
    known = targets()
    for job, _, step in steps(path):
        if "run" not in step:
            continue
        script = step["run"].strip()
        called = re.findall(r"\bmake ([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*)", script)
        modules = re.findall(r"python -m (llmops\.[\w.]+)", script)
        assert called or modules, f"{path.name} {job}: `{script}` is neither make nor llmops"
        for target in " ".join(called).split():
            assert target in known, f"{path.name} {job}: make {target}"
        for module in modules:
            assert (REPO / "src" / Path(*module.split("."))).with_suffix(".py").exists(), module


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path):
    data = load(path)
    assert data.get("permissions") in ({}, {"contents": "read"}), "workflow-wide: read at most"
    assert "pull_request_target" not in str(data["on"])
    for name, job in data["jobs"].items():
        assert "timeout-minutes" in job, name
        assert "write-all" not in str(job.get("permissions", "")), name


def runs_pull_request_code(data: dict) -> bool:
    return "pull_request" in (data["on"] if isinstance(data["on"], dict) else [data["on"]])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_running_pull_request_code_hold_no_write_token_or_secret(path):
    data = load(path)
    if not runs_pull_request_code(data):
        return
    text = path.read_text()
    assert not re.search(r"\bsecrets\.\w", text), (
        "a secret in a workflow that runs pull-request code"
    )
    for name, job in data["jobs"].items():
        assert not WRITE.search(yaml.safe_dump(job.get("permissions", {}))), name
        for _, _, step in steps(path):
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False, name


def test_the_comment_workflow_never_checks_out_pull_request_code():
    path = REPO / ".github" / "workflows" / "model-report-comment.yml"
    data = load(path)
    assert list(data["on"]) == ["workflow_run"]
    (job,) = data["jobs"].values()
    assert job["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}
    for _, _, step in steps(path):
        if step.get("uses", "").startswith("actions/checkout"):
            assert "ref" not in step.get("with", {}) and "repository" not in step.get("with", {})


def test_secrets_reach_only_the_steps_that_use_them():
    for path in WORKFLOWS:
        data = load(path)
        assert "secrets." not in yaml.safe_dump(data.get("env", {})), path.name
        for name, job in data["jobs"].items():
            assert "secrets." not in yaml.safe_dump(job.get("env", {})), f"{path.name} {name}"


def test_data_pulled_with_secrets_never_reaches_a_cache_pull_requests_restore():
    deploy = (REPO / ".github" / "workflows" / "deploy.yml").read_text()
    assert "actions/cache" not in deploy  # the deploy job saves no cache at all
    for path in WORKFLOWS:
        for _, _, step in steps(path):
            if (
                step.get("uses", "").startswith("actions/cache")
                and step["with"]["path"] == ".dvc/cache"
            ):
                assert step["with"]["key"].startswith("dvc-pr-"), path.name
                assert step["with"]["restore-keys"] == "dvc-pr-", path.name


def test_the_gpu_runner_is_reachable_only_by_hand_behind_an_environment():
    data = load(REPO / ".github" / "workflows" / "full-run.yml")
    assert list(data["on"]) == ["workflow_dispatch"]  # no pull-request event reaches it
    job = data["jobs"]["pipeline"]
    assert "self-hosted" in job["runs-on"] and job["environment"] == "gpu"


def test_deploy_jobs_hold_their_environments_secrets_and_promote_last():
    data = load(REPO / ".github" / "workflows" / "deploy.yml")
    jobs = data["jobs"]
    assert {n: j.get("environment") for n, j in jobs.items()} == {
        "build": "release", "staging": "staging", "production": "production"}  # fmt: skip
    assert jobs["production"]["needs"] == ["build", "staging"]
    runs = [s.get("run", "") for s in jobs["production"]["steps"]]
    last_forward = [r for r in runs if r and "rollback" not in r][-1]
    assert last_forward == "make promote"  # champion moves only after the deployed smoke test
    assert "make register" in [s.get("run") for s in jobs["build"]["steps"]]
    for job in jobs.values():  # rollbacks also run when the run is cancelled
        for step in job["steps"]:
            if "rollback" in step.get("run", ""):
                assert "cancelled()" in step["if"] and "failure()" in step["if"], step


def test_the_comment_is_posted_without_cml():
    text = (REPO / ".github" / "workflows" / "model-report-comment.yml").read_text()
    assert "setup-cml" not in text and "cml " not in text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_the_version_beside_it(path):
    for line in path.read_text().splitlines():
        if re.match(r"\s*-?\s*uses:", line):
            assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_script(path):
    for job, _, step in steps(path):
        assert "${{" not in step.get("run", ""), f"{path.name} {job}: {step['run']}"


def test_pull_request_workflows_cancel_superseded_runs():
    for path in WORKFLOWS:
        data = load(path)
        if runs_pull_request_code(data):
            assert data["concurrency"]["cancel-in-progress"] in (
                True,
                "${{ github.event_name == 'pull_request' }}",
            ), path.name


def expression_env() -> set[str]:
    """The environment variables a workflow fills from an expression (a branch name, a
    repository variable, an event field): values make receives from outside."""
    names = set()
    for path in WORKFLOWS:
        data = load(path)
        for job in data["jobs"].values():
            blocks = [data.get("env", {}), job.get("env", {})]
            blocks += [step.get("env", {}) for step in job.get("steps", [])]
            names |= {k for block in blocks for k, v in block.items() if "${{" in str(v)}
    return names


def test_make_never_expands_a_value_a_workflow_passes_in_the_environment(tmp_path):
    # make -n expands every recipe without running it; a variable from the environment that
    # the Makefile read as $(NAME) would run a `$(shell ...)` inside it.
    names = expression_env()
    assert {"BASELINE", "DVC_REMOTE", "IMAGE_REPOSITORY", "DEPLOYMENT", "PR"} <= names
    marker = tmp_path / "pwned"
    env = {**os.environ, **dict.fromkeys(names, f"$(shell touch {marker})")}
    done = subprocess.run(["make", "-n", "-k", "-o", ".venv/.installed", *sorted(targets())],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert not marker.exists(), done.stdout + done.stderr


def test_dependabot_updates_the_action_pins():
    data = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert data["version"] == 2
    assert {u["package-ecosystem"] for u in data["updates"]} == {"github-actions"}
    assert all(u["directory"] == "/" and u["schedule"]["interval"] for u in data["updates"])


def test_codeowners_cover_what_ci_runs_and_installs():
    lines = (REPO / ".github" / "CODEOWNERS").read_text().splitlines()
    owned = {line.split()[0]: line.split()[1:] for line in lines if line.strip() and line[0] != "#"}
    for path in ("/.github/", "/Makefile", "/dvc.yaml", "/requirements.lock", "/.ci/"):
        assert owned.get(path), f"no code owner for {path}"
