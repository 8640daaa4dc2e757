"""Replay GitHub Actions workflows locally (Actions cannot run here): a job's `run:` steps
in order, with the environment the workflow gives them and its `if:` conditions evaluated
as Actions does (status functions, `steps`, `needs`, `vars`, `env`, `github` contexts), in
a git repository made from this one. A failing step fails the job: later steps run only
when their condition asks for it (`always()`, `failure()`), as on Actions; `cancel_after`
cancels the run after a given step, the way a person pressing "Cancel" would. Steps that
use an action (checkout, caches, artefacts, cloud logins) are GitHub's, not the
repository's, and are not replayed; `vars.*` are the repository's (an environment's
variables are not visible to a job's `if:` on GitHub either). Used by the rehearsal tests at the end of tests/e2e/test_pipeline_e2e.py."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STATUS = re.compile(r"\b(always|failure|cancelled|success)\(\)")
CONTEXT = re.compile(r"\b(?:steps|needs|vars|env|github|secrets)(?:\.[\w-]+)+")


@dataclass
class Job:
    """A replayed job: the commands run, whether it failed or was cancelled, each step's
    outcome and outputs (by id), and the job's outputs."""

    ran: list[str] = field(default_factory=list)
    failed: bool = False
    cancelled: bool = False
    outcomes: dict[str, str] = field(default_factory=dict)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "cancelled" if self.cancelled else "failure" if self.failed else "success"


def _value(name: str, scope: dict) -> object:
    """A context reference (steps.x.outputs.y, needs.j.result, vars.V, ...) from `scope`."""
    parts = name.split(".")
    head = parts[0]
    if head == "steps" and len(parts) == 4 and parts[2] == "outputs":
        return scope["job"].step_outputs.get(parts[1], {}).get(parts[3], "")
    if head == "steps" and len(parts) == 3 and parts[2] in ("outcome", "conclusion"):
        return scope["job"].outcomes.get(parts[1], "skipped")
    if head == "needs" and len(parts) == 4 and parts[2] == "outputs":
        return scope["needs"].get(parts[1], Job()).outputs.get(parts[3], "")
    if head == "needs" and len(parts) == 3 and parts[2] == "result":
        return scope["needs"][parts[1]].result if parts[1] in scope["needs"] else "skipped"
    if head == "env":
        return scope["env"].get(parts[1], "")
    return scope["context"].get(name, "")  # vars.*, secrets.*, github.*: as the test gives


def evaluate(expr: str, scope: dict) -> object:
    """An Actions expression as Python: contexts looked up, && || ! mapped, status functions
    from the job's state."""
    job: Job = scope["job"]
    text = CONTEXT.sub(lambda m: repr(_value(m.group(0), scope)), expr)
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    functions = {
        "always": lambda: True,
        "failure": lambda: job.failed or any(n.result == "failure" for n in scope["needs"].values()),
        "cancelled": lambda: job.cancelled,
        # a job's `if:` also needs every job it needs to have succeeded
        "success": lambda: not job.failed and not job.cancelled
        and all(n.result == "success" for n in scope["needs"].values()),
    }  # fmt: skip
    return eval(text, {"__builtins__": {}}, functions)  # the repository's own workflow files


def holds(condition: str | None, scope: dict) -> bool:
    """An `if:`; without a status function Actions adds `success() &&` in front."""
    expr = str(condition or "").replace("${{", "").replace("}}", "").strip()
    if not STATUS.search(expr):
        expr = f"success() and ({expr})" if expr else "success()"
    return bool(evaluate(expr, scope))


def render(value: object, scope: dict) -> str:
    """A workflow value with its ${{ ... }} expressions filled in."""

    def one(match: re.Match) -> str:
        got = evaluate(match.group(1).strip(), scope)
        return str(got).lower() if isinstance(got, bool) else str(got)

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def replay_job(
    sh: Callable, repo: Path, workflow: str, job: str, context: dict, extra_env: dict,
    needs: dict[str, Job] | None = None, cancel_after: str | None = None,
) -> Job | None:  # fmt: skip
    """Replay one job with `sh(cwd, *cmd, check=False, **env)`; None when its own `if:`
    skips it. `needs`: the jobs it needs, replayed before."""
    data = yaml.safe_load((REPO / ".github" / "workflows" / workflow).read_text())
    spec = data["jobs"][job]
    state = Job()
    scope = {"job": state, "needs": needs or {}, "context": context, "env": {}}
    if "if" in spec and not holds(spec["if"], scope):
        return None
    env = {k: render(v, scope) for k, v in spec.get("env", {}).items()} | extra_env
    # The tests' environment, not a new .venv: make's install stamp, as `make -o` would give
    # (make ignores -o in $MAKEFLAGS); recipes find the tests' interpreter on PATH.
    stamp = repo / ".venv" / ".installed"
    if not stamp.exists():
        stamp.parent.mkdir(exist_ok=True)
        stamp.touch()
    scope["env"] = env
    for number, step in enumerate(spec["steps"]):
        step_id = step.get("id", f"step{number}")
        if "run" not in step or not holds(step.get("if"), scope):
            state.outcomes[step_id] = "skipped"
            continue
        step_env = env | {k: render(v, scope) for k, v in step.get("env", {}).items()}
        output_file = repo.parent / f"{workflow}-{job}-{number}.out"
        output_file.write_text("")
        step_env |= {"GITHUB_OUTPUT": str(output_file)}
        done: subprocess.CompletedProcess = sh(repo, "bash", "-eo", "pipefail", "-c",
                                               step["run"], check=False, **step_env)  # fmt: skip
        state.ran.append(step["run"])
        lines = output_file.read_text().splitlines()
        state.step_outputs[step_id] = dict(line.split("=", 1) for line in lines if "=" in line)
        state.outcomes[step_id] = "success" if done.returncode == 0 else "failure"
        if done.returncode != 0:
            state.failed = True
            state.errors.append(f"{step['run']} ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        if cancel_after is not None and step["run"] == cancel_after:
            state.cancelled = True
    state.outputs = {k: render(v, scope) for k, v in spec.get("outputs", {}).items()}
    return state


def replay(
    sh: Callable, repo: Path, workflow: str, job: str, context: dict, extra_env: dict
) -> list[str]:
    """Replay a job that must succeed; the commands run."""
    done = replay_job(sh, repo, workflow, job, context, extra_env)
    assert done is not None, f"{workflow} {job} was skipped"
    assert not done.failed, "\n".join(done.errors)
    return done.ran
