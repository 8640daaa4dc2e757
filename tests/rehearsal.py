"""Replay GitHub Actions workflows locally (Actions cannot run here): a job's `run:` steps
in order, with the environment the workflow gives them and its `if:` conditions evaluated,
in a git repository made from this one. Steps that use an action (checkout, caches,
artefacts) are GitHub's, not the repository's, and are not replayed. Used by the
rehearsal tests at the end of tests/test_pipeline_e2e.py."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


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


def replay(
    sh: Callable, repo: Path, workflow: str, job: str, context: dict, extra_env: dict
) -> list[str]:
    """Run the job's `run:` steps in order with `sh(cwd, *cmd, **env)`, which raises on a
    failure; return the commands run."""
    data = yaml.safe_load((REPO / ".github" / "workflows" / workflow).read_text())
    spec = data["jobs"][job]
    env = {k: render(v, context) for k, v in spec.get("env", {}).items()} | extra_env
    env["MAKEFLAGS"] = "--old-file=.venv/.installed"  # the tests' environment, not a new .venv
    outputs: dict[str, dict] = {}
    ran = []
    for step in spec["steps"]:
        if "run" not in step or not holds(step.get("if"), outputs, env):
            continue
        step_env = env | {k: render(v, context) for k, v in step.get("env", {}).items()}
        output_file = repo.parent / f"{workflow}-{len(ran)}.out"
        output_file.write_text("")
        step_env |= {"GITHUB_OUTPUT": str(output_file)}
        sh(repo, "bash", "-eo", "pipefail", "-c", step["run"], **step_env)
        if step.get("id"):
            lines = output_file.read_text().splitlines()
            outputs[step["id"]] = dict(line.split("=", 1) for line in lines if "=" in line)
        ran.append(step["run"])
    return ran
