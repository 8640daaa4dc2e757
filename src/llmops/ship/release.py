"""Release steps the merge-to-main workflow runs (make release-plan, deploy-cloud, rollback-cloud).

Run: python -m llmops.ship.release plan
     python -m llmops.ship.release image-tag --repository ghcr.io/org/app --sha <git sha>
     python -m llmops.ship.release deploy --bento llmops-service:latest --name llmops \
        [--secret llmops-api-key] [--params params.yaml] [--timeout 900] [--interval 10] \
        [--target bentocloud|image] [--state .release/previous.json]
     python -m llmops.ship.release rollback --name llmops [--timeout 900] [--interval 10] \
        [--state .release/previous.json]

`plan` says which release features the environment configures (true/false only, never a
value), also as `key=value` lines appended to $GITHUB_OUTPUT when that is set. `image-tag`
prints `<repository>:<sha>` after checking both, as the value goes into shell commands.

`deploy --target bentocloud` ships a Bento that requires its API key, and waits for it:
1. the BentoCloud secret `--secret` (default $BENTOCLOUD_SECRET; none: refused) must exist
   and set the variable params.yaml `serve.api_key_env` names (LLMOPS_API_KEY), as
   `bentoml secret create <name> LLMOPS_API_KEY=...` makes it; the key is never on argv;
2. the Bento the deployment runs now (`bentoml deployment get`) and the new one (its version
   from the local store for `name:latest`) are written to the state file;
3. the deployment is created (`bentoml deploy`) or updated to the new Bento, the secret
   attached, and `bentoml deployment get` is polled until it runs that Bento (`--timeout`);
4. when the update or the wait fails, the previous Bento is put back (a deployment that ran
   nothing before is terminated) and the command fails, naming the last status seen.
`rollback` puts the Bento the state file records back and waits for it, e.g. when the smoke
test of the deployed endpoint fails. With `--target image` pushing the image is the
deployment and there is nothing to do. The `bentoml` CLI is found on PATH and authenticates
with BENTOML_CLOUD_API_KEY (and BENTOML_CLOUD_API_ENDPOINT) from the environment, passed on
under the names it reads (BENTO_CLOUD_API_KEY, ..._ENDPOINT).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from llmops.config.params import ParamsError, load_params

STATE = Path(".release/previous.json")
# Docker reference grammar, lowercase: [host[:port]/]component[/component...]
_HOST = r"[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
SHA = re.compile(r"[0-9a-f]{7,40}")
BENTO = re.compile(r"[a-z0-9][a-z0-9._-]*(?::[A-Za-z0-9][A-Za-z0-9._-]*)?")
DEPLOYMENT = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
SECRET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# BentoCloud deployment statuses (bentoml 1.4.40 DeploymentStatus); READY and FAILED are the
# sets `bentoml deploy`'s own wait (Deployment.wait_until_ready) stops on.
READY = ("running", "scaled-to-zero")
FAILED = ("failed", "image-build-failed", "unhealthy", "terminating", "terminated")


class ReleaseError(RuntimeError):
    """A release step that cannot go ahead; the message says why."""


def is_server(uri: str) -> bool:
    """Whether an MLflow tracking URI names a server (not a local file or database)."""
    return uri.startswith(("http://", "https://"))


def plan(env: Mapping[str, str]) -> dict[str, bool]:
    """Which release features `env` configures (booleans only: values may be secrets)."""
    return {
        "dvc_remote": bool(env.get("DVC_REMOTE")),
        **targets(env),
        "container": container_engine(env),
    }


def targets(env: Mapping[str, str]) -> dict[str, bool]:
    """The features of `plan` that ship a model somewhere, read from `env` alone."""
    return {
        "mlflow_server": is_server(env.get("MLFLOW_TRACKING_URI", "")),
        "bentocloud": bool(env.get("BENTOML_CLOUD_API_KEY") or env.get("BENTO_CLOUD_API_KEY")),
        # a registry path (ghcr.io/org/app), not make's local default name (llmops-service)
        "registry": "/" in env.get("IMAGE_REPOSITORY", ""),
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
    for ours, theirs in (
        ("BENTOML_CLOUD_API_KEY", "BENTO_CLOUD_API_KEY"),
        ("BENTOML_CLOUD_API_ENDPOINT", "BENTO_CLOUD_API_ENDPOINT"),
    ):
        if out.get(ours) and not out.get(theirs):
            out[theirs] = out[ours]
    return out


def bentoml(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the `bentoml` CLI found on PATH, credentials in its environment (never argv)."""
    # rich wraps what the CLI prints at the terminal width (80 when piped), which breaks
    # long strings in `-o json` output (seen with `secret list -o json`); COLUMNS widens it
    env = {**cloud_env(os.environ), "COLUMNS": "100000"}
    try:
        return subprocess.run(["bentoml", *args], capture_output=capture, text=True, env=env)
    except OSError as err:
        raise ReleaseError(f"cannot run the bentoml CLI: {err}") from None


def said(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a failed command printed (its error), or its exit status."""
    lines = (done.stderr or "").strip().splitlines() or (done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def parse_json(text: str) -> object:
    """The first JSON value that starts a line of `text` (the CLI may print notices first)."""
    for start in re.finditer(r"^[ \t]*[\[{]", text, re.MULTILINE):
        try:
            return json.JSONDecoder().raw_decode(text, start.end() - 1)[0]
        except ValueError:
            continue
    raise ValueError("no JSON in the output")


@dataclass(frozen=True)
class Seen:
    """What `bentoml deployment get -o json` says: the Bento and the status."""

    bento: str
    status: str


def deployment_state(name: str) -> Seen | None:
    """The Bento and status of BentoCloud deployment `name`; None when there is none."""
    done = bentoml("deployment", "get", name, "-o", "json", capture=True)
    if done.returncode != 0:
        if "not found" in (done.stderr + done.stdout).lower():
            return None
        raise ReleaseError(f"cannot read deployment {name!r}: {said(done)}")
    try:  # {"name", "bento": "repo:version", ..., "status": {"status", "created_at", ...}}
        info = parse_json(done.stdout)
        return Seen(str(info["bento"]), str(info["status"]["status"]))
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"deployment {name!r}: no Bento in `bentoml deployment get`") from None


def check_secret(secret: str, variable: str) -> None:
    """Refuse unless BentoCloud secret `secret` sets environment variable `variable` at run
    time; nothing of the listing (values included) is ever printed."""
    create = f"create it with `bentoml secret create {secret} {variable}=...`"
    done = bentoml("secret", "list", "-o", "json", capture=True)
    if done.returncode != 0:
        raise ReleaseError(f"cannot list BentoCloud secrets: {said(done)}")
    try:  # [{"name", ..., "content": {"type": "env", "items": [{"key", ...}], "stage"}}]
        found = [s for s in parse_json(done.stdout) if s["name"] == secret]
        content = found[0]["content"] if found else {}
        keys = [item["key"] for item in content.get("items") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ReleaseError("cannot read `bentoml secret list -o json`") from None
    if not found:
        raise ReleaseError(f"BentoCloud secret {secret!r} not found: {create}")
    if content.get("type") != "env" or variable not in keys or content.get("stage") == "build":
        raise ReleaseError(
            f"BentoCloud secret {secret!r} does not set {variable} at run time "
            f"(keys: {', '.join(keys) or 'none'}): {create}"
        )


def bento_tag(bento: str) -> str:
    """`bento` with its version: as given, or the local store's for `name`/`name:latest`
    (`bentoml deployment get` reports the version, so the rollout waits for that)."""
    version = bento.partition(":")[2]
    if version and version != "latest":
        return bento
    done = bentoml("get", bento, "-o", "json", capture=True)
    try:  # the local bento.yaml as JSON: {"service", "name", "version", ...}
        info = parse_json(done.stdout) if done.returncode == 0 else {}
        tag = f"{info['name']}:{info['version']}"
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"no Bento {bento} in the local store (make bento builds it)") from None
    return checked(BENTO, tag, "Bento tag from `bentoml get`", "name:version")


@dataclass(frozen=True)
class Wait:
    """How long to wait for a rollout and how often to look; `sleep` and `clock` are
    injectable so tests need not wait."""

    timeout: float = 900.0
    interval: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def wait_for(name: str, bento: str, wait: Wait) -> Seen:
    """Poll deployment `name` until it runs `bento` with a ready status; ReleaseError with
    the last status seen when that rollout fails or `wait.timeout` passes."""
    deadline = wait.clock() + wait.timeout
    while True:
        wait.sleep(wait.interval)  # first look after a pause too: the update has just begun
        seen = deployment_state(name)
        if seen is None:
            raise ReleaseError(f"deployment {name!r} disappeared while rolling out {bento}")
        if seen.bento == bento and seen.status in READY:
            return seen
        if seen.bento == bento and seen.status in FAILED:
            raise ReleaseError(f"{name!r} did not start {bento}: status {seen.status}")
        if wait.clock() >= deadline:
            raise ReleaseError(
                f"{name!r} not running {bento} after {wait.timeout:g} s: "
                f"last status {seen.status} (Bento {seen.bento})"
            )


@dataclass(frozen=True)
class Release:
    """A deploy: the deployment, the Bento it ran before (None: none), the one deployed, and
    whether it was rolled back already (then a rollback has nothing left to do)."""

    deployment: str
    previous: str | None
    deployed: str | None
    rolled_back: bool = False


def write_record(path: Path, release: Release) -> Path:
    """Write `release` as JSON to `path` (the state rollback reads; an artefact to keep)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(release), indent=2) + "\n", encoding="utf-8")
    return path


def deploy(
    bento: str, name: str, secret: str, api_key_env: str, state: Path = STATE, wait: Wait = Wait()
) -> Release:
    """Put `bento` on BentoCloud deployment `name` with `secret` (which must set
    `api_key_env`) attached and wait until it runs; on failure take it off again, then raise."""
    checked(BENTO, bento, "Bento tag", "name[:version]")
    checked(DEPLOYMENT, name, "deployment name", "lowercase letters, digits and -")
    if not secret:
        raise ReleaseError(
            f"no BentoCloud secret for the API key: set BENTOCLOUD_SECRET (or --secret) to a "
            f"secret made with `bentoml secret create <name> {api_key_env}=...`"
        )
    checked(SECRET, secret, "secret name", "letters, digits, . _ and -")
    check_secret(secret, api_key_env)
    bento = bento_tag(bento)
    now = deployment_state(name)
    previous = now.bento if now and now.status not in ("terminating", "terminated") else None
    release = Release(name, previous, bento)
    write_record(state, release)
    # --secret replaces the deployment's list of secrets; update merges the rest onto its
    # config (bentoml 1.4.40 DeploymentAPI.update), so scaling and the like stay as they are
    if now is None:  # --no-wait: one wait below, the same for a new deployment and an update
        done = bentoml("deploy", bento, "-n", name, "--secret", secret, "--no-wait")
    else:  # `deployment update` has no --wait: it returns once BentoCloud accepted it
        done = bentoml("deployment", "update", name, "--bento", bento, "--secret", secret)
    try:
        if done.returncode != 0:
            raise ReleaseError(f"bentoml could not deploy {bento} to {name!r} (see above)")
        wait_for(name, bento, wait)
    except ReleaseError as err:
        raise ReleaseError(f"{err}; {take_off(name, previous, state, wait)}") from None
    return release


def take_off(name: str, previous: str | None, state: Path, wait: Wait) -> str:
    """Take a failed rollout off `name`: put `previous` back, or terminate a deployment that
    ran nothing before; what became of it."""
    if previous is None:
        try:
            terminate(name, state)
        except ReleaseError as err:
            return str(err)
        return f"terminated {name!r}"
    try:
        put_back(name, previous, state, wait)
    except ReleaseError as err:
        return f"putting {previous} back failed too: {err}"
    return f"put {previous} back"


def put_back(name: str, previous: str, state: Path, wait: Wait) -> None:
    done = bentoml("deployment", "update", name, "--bento", previous)
    if done.returncode != 0:
        raise ReleaseError(f"bentoml could not roll {name!r} back to {previous} (see above)")
    wait_for(name, previous, wait)
    write_record(state, Release(name, None, previous, rolled_back=True))


def terminate(name: str, state: Path) -> None:
    """Stop a deployment that ran nothing before this release (a first deploy that failed)."""
    done = bentoml("deployment", "terminate", name)
    if done.returncode != 0:
        raise ReleaseError(f"could not terminate {name!r} (see above)")
    write_record(state, Release(name, None, None, rolled_back=True))


def rollback(name: str, state: Path = STATE, wait: Wait = Wait()) -> str:
    """Undo the deploy `state` records on deployment `name`: put the Bento it replaced back,
    or terminate the deployment when it ran nothing before (a first deploy); what was done."""
    checked(DEPLOYMENT, name, "deployment name", "lowercase letters, digits and -")
    try:
        info = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ReleaseError(f"no deploy recorded in {state}: nothing to roll back") from None
    if info.get("deployment") != name:
        raise ReleaseError(f"{state} records a deploy to {info.get('deployment')!r}, not {name!r}")
    if info.get("rolled_back"):  # the deploy took itself off, or a rollback ran already
        return "rolled back already: nothing to do"
    previous = info.get("previous")
    if not previous:
        if not info.get("deployed"):
            raise ReleaseError(f"{state} records no deploy to {name!r}: nothing to roll back")
        terminate(name, state)  # nothing ran before this release: nothing failed stays live
        return f"terminated (it ran nothing before {info['deployed']})"
    checked(BENTO, previous, "recorded Bento tag", "name[:version]")
    put_back(name, previous, state, wait)
    return f"rolled back to {previous}"


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
    dep.add_argument("--secret", help="BentoCloud secret with the API key ($BENTOCLOUD_SECRET)")
    dep.add_argument("--params", type=Path, default=Path("params.yaml"))
    back = commands.add_parser("rollback")
    for sub in (dep, back):
        sub.add_argument("--name", required=True, help="the deployment")
        sub.add_argument("--state", type=Path, default=STATE, help="the record of deploys")
        sub.add_argument("--timeout", type=float, default=Wait.timeout, help="seconds")
        sub.add_argument("--interval", type=float, default=Wait.interval, help="seconds")
    args = parser.parse_args(argv)
    if args.command in ("deploy", "rollback") and (args.timeout < 0 or args.interval < 0):
        parser.error("--timeout and --interval: expected seconds >= 0")
    return args


def run(args: argparse.Namespace) -> str:
    """Do the command; what to print."""
    if args.command == "plan":
        return github_output(plan(os.environ), os.environ).rstrip("\n")
    if args.command == "image-tag":
        return image_tag(args.repository, args.sha)
    wait = Wait(timeout=args.timeout, interval=args.interval)
    if args.command == "rollback":
        return f"{args.name}: {rollback(args.name, args.state, wait)}"
    if args.target == "image":
        return "target image: pushing the image is the deployment; nothing to do here"
    secret = args.secret if args.secret is not None else os.environ.get("BENTOCLOUD_SECRET", "")
    try:
        api_key_env = load_params(args.params).serve.api_key_env
    except ParamsError as err:
        raise ReleaseError(str(err)) from None
    done = deploy(args.bento, args.name, secret, api_key_env, args.state, wait)
    return (
        f"{done.deployment}: deployed {done.deployed} "
        f"(previous: {done.previous or 'none'}, recorded in {args.state})"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        print(run(args))
    except ReleaseError as err:
        print(f"release {args.command}: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
