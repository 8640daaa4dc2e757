"""Release steps the merge-to-main workflow runs (make release-plan, deploy-cloud, rollback-cloud).

Run: python -m llmops.release plan
     python -m llmops.release image-tag --repository ghcr.io/org/app --sha <git sha>
     python -m llmops.release deploy --bento llmops-service:latest --name llmops \
        [--target bentocloud|image] [--state .release/previous.json]
     python -m llmops.release rollback --name llmops [--state .release/previous.json]

`plan` says which release features the environment configures (true/false only, never a
value), also as `key=value` lines appended to $GITHUB_OUTPUT when that is set. `image-tag`
prints `<repository>:<sha>` after checking both, as the value goes into shell commands.
`deploy --target bentocloud` reads the Bento the deployment runs now (`bentoml deployment
get`), records it in the state file, then updates the deployment to the new Bento (or
creates it); `rollback` puts the recorded Bento back. With `--target image` pushing the
image is the deployment and there is nothing to do. The `bentoml` CLI is found on PATH and
authenticates with BENTOML_CLOUD_API_KEY (and BENTOML_CLOUD_API_ENDPOINT) from the
environment, passed on under the names it reads (BENTO_CLOUD_API_KEY, ..._ENDPOINT).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

STATE = Path(".release/previous.json")
# Docker reference grammar, lowercase: [host[:port]/]component[/component...]
_HOST = r"[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
SHA = re.compile(r"[0-9a-f]{7,40}")
BENTO = re.compile(r"[a-z0-9][a-z0-9._-]*(?::[A-Za-z0-9][A-Za-z0-9._-]*)?")
DEPLOYMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


class ReleaseError(RuntimeError):
    """A release step that cannot go ahead; the message says why."""


def is_server(uri: str) -> bool:
    """Whether an MLflow tracking URI names a server (not a local file or database)."""
    return uri.startswith(("http://", "https://"))


def plan(env: Mapping[str, str]) -> dict[str, bool]:
    """Which release features `env` configures (booleans only: values may be secrets)."""
    return {
        "dvc_remote": bool(env.get("DVC_REMOTE")),
        "mlflow_server": is_server(env.get("MLFLOW_TRACKING_URI", "")),
        "bentocloud": bool(env.get("BENTOML_CLOUD_API_KEY") or env.get("BENTO_CLOUD_API_KEY")),
        # a registry path (ghcr.io/org/app), not make's local default name (llmops-service)
        "registry": "/" in env.get("IMAGE_REPOSITORY", ""),
        "container": container_engine(env),
    }


def container_engine(env: Mapping[str, str]) -> bool:
    """A `docker` binary whose engine answers (`docker info`): a CLI alone builds nothing."""
    docker = shutil.which("docker", path=env.get("PATH", ""))
    if docker is None:
        return False
    try:
        done = subprocess.run([docker, "info"], env=dict(env), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def github_output(values: Mapping[str, str | bool], env: Mapping[str, str]) -> str:
    """`key=value` lines (booleans as true/false), appended to $GITHUB_OUTPUT when set."""
    shown = {k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items()}
    if any("\n" in k + v or "\r" in k + v for k, v in shown.items()):
        raise ReleaseError("a GitHub output holds a line break")  # it would forge other keys
    text = "".join(f"{k}={v}\n" for k, v in shown.items())
    if env.get("GITHUB_OUTPUT"):
        with Path(env["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as out:
            out.write(text)
    return text


def checked(pattern: re.Pattern[str], value: str, what: str, example: str) -> str:
    if len(value) > 255 or not pattern.fullmatch(value):
        raise ReleaseError(f"bad {what} {value!r}: expected {example}")
    return value


def image_tag(repository: str, sha: str) -> str:
    """`repository:sha`, both checked (the value ends up in shell commands)."""
    checked(REPOSITORY, repository, "repository", "a lowercase registry path: ghcr.io/org/app")
    checked(SHA, sha, "sha", "7 to 40 lowercase hex digits")
    return f"{repository}:{sha}"


def cloud_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the BentoCloud credentials under the names the bentoml CLI reads
    (BENTO_CLOUD_API_KEY/_ENDPOINT; this project's secrets are BENTOML_CLOUD_API_*)."""
    out = dict(env)
    for ours, theirs in (("BENTOML_CLOUD_API_KEY", "BENTO_CLOUD_API_KEY"),
                         ("BENTOML_CLOUD_API_ENDPOINT", "BENTO_CLOUD_API_ENDPOINT")):  # fmt: skip
        if out.get(ours) and not out.get(theirs):
            out[theirs] = out[ours]
    return out


def bentoml(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the `bentoml` CLI found on PATH, credentials in its environment (never argv)."""
    try:
        return subprocess.run(
            ["bentoml", *args], capture_output=capture, text=True, env=cloud_env(os.environ)
        )
    except OSError as err:
        raise ReleaseError(f"cannot run the bentoml CLI: {err}") from None


def deployed_bento(name: str) -> str | None:
    """The Bento deployment `name` runs on BentoCloud; None when there is no such deployment."""
    done = bentoml("deployment", "get", name, "-o", "json", capture=True)
    if done.returncode != 0:
        said = (done.stderr + done.stdout).strip()
        if "not found" in said.lower():
            return None
        last = said.splitlines()[-1] if said else f"exit status {done.returncode}"
        raise ReleaseError(f"cannot read deployment {name!r}: {last}")
    try:  # from the first "{": the CLI may print a notice before the JSON
        start = done.stdout.index("{")
        return str(json.JSONDecoder().raw_decode(done.stdout[start:])[0]["bento"])
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"deployment {name!r}: no Bento in `bentoml deployment get`") from None


def record(state: Path, name: str, previous: str | None, deployed: str | None) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    info = {"deployment": name, "previous": previous, "deployed": deployed}
    state.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def deploy(bento: str, name: str, state: Path = STATE) -> str | None:
    """Put `bento` on BentoCloud deployment `name`, recording the one it replaces first."""
    checked(BENTO, bento, "Bento tag", "name[:version]")
    checked(DEPLOYMENT, name, "deployment name", "lowercase letters, digits and -")
    previous = deployed_bento(name)
    record(state, name, previous, bento)
    if previous is None:
        done = bentoml("deploy", bento, "-n", name)
    else:
        done = bentoml("deployment", "update", name, "--bento", bento)
    if done.returncode != 0:
        raise ReleaseError(f"bentoml could not deploy {bento} to {name!r} (see above)")
    return previous


def rollback(name: str, state: Path = STATE) -> str:
    """Put the Bento that `deploy` replaced back on deployment `name`; that Bento."""
    checked(DEPLOYMENT, name, "deployment name", "lowercase letters, digits and -")
    try:
        info = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ReleaseError(f"no deploy recorded in {state}: nothing to roll back") from None
    previous = info.get("previous")
    if info.get("deployment") != name or not previous:
        raise ReleaseError(f"{state} records no previous Bento for {name!r}: nothing to roll back")
    checked(BENTO, previous, "recorded Bento tag", "name[:version]")
    done = bentoml("deployment", "update", name, "--bento", previous)
    if done.returncode != 0:
        raise ReleaseError(f"bentoml could not roll {name!r} back to {previous} (see above)")
    record(state, name, None, previous)  # rolled back: a second rollback has nothing to do
    return previous


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan")
    tag = commands.add_parser("image-tag")
    tag.add_argument("--repository", required=True)
    tag.add_argument("--sha", required=True)
    dep = commands.add_parser("deploy")
    dep.add_argument("--bento", required=True)
    dep.add_argument("--target", choices=("bentocloud", "image"), default="bentocloud")
    back = commands.add_parser("rollback")
    for sub in (dep, back):
        sub.add_argument("--name", required=True, help="the deployment")
        sub.add_argument("--state", type=Path, default=STATE, help="the record of deploys")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    """Do the command; what to print."""
    if args.command == "plan":
        return github_output(plan(os.environ), os.environ).rstrip("\n")
    if args.command == "image-tag":
        return image_tag(args.repository, args.sha)
    if args.command == "rollback":
        return f"{args.name}: rolled back to {rollback(args.name, args.state)}"
    if args.target == "image":
        return "target image: pushing the image is the deployment; nothing to do here"
    previous = deploy(args.bento, args.name, args.state)
    return f"{args.name}: deployed {args.bento} (previous: {previous or 'none'}, in {args.state})"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        print(run(args))
    except ReleaseError as err:
        print(f"release {args.command}: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
