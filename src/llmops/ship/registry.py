"""Register the trained adapter in MLflow's model registry; promote it when it serves.

Run: python -m llmops.ship.registry register --adapter models/adapter --eval metrics/eval.json \
        [--name NAME] [--alias challenger] [--bento-model TAG] [--require-server] [--params P]
     python -m llmops.ship.registry record [--name NAME] [--alias challenger] [KEY=VALUE ...] \
        [--state .release/previous.json]
     python -m llmops.ship.registry promote [--name NAME] [--from challenger | --version N] \
        [--alias champion]
     python -m llmops.ship.registry rollback [--name NAME] [--alias champion]
     python -m llmops.ship.registry show [--name NAME]

NAME defaults to params.yaml `serve.name`. `register` makes the train stage's run artifact
(`runs:/<run id>/adapter`, run id from <adapter>/training.json) a version of the registered
model, tags it with the commit, the eval metrics (`eval.<metric>`, the fine-tuned model's)
and the BentoML model tag, and points the `challenger` alias at it: registering moves no
alias that serves. `record` tags the challenger with what serves it (the Bento tag, the
image and its digest, the deployment and the Bento it replaced), so a later run can find
them (a pair with an empty value is skipped; `--state` adds the deploy record's deployment,
Bento and replaced Bento). `promote` moves `champion` to the challenger (or `--version`,
the one the release built), the release's last step once the deployed service answered the
smoke test with it, and records the version it left as the tag `previous_champion`, which
`rollback` moves the alias back to. Registering the same run again reuses its version.
Under GitHub Actions `register` writes `registered_version`, and `promote` writes
`alias_moved` (false when the alias was already there: a rollback then would undo an
earlier release, not this one) to $GITHUB_OUTPUT.

The registry is the tracking store's (llmops.config.tracking: MLFLOW_TRACKING_URI, else the local
sqlite:///mlflow.db). With `--require-server` (CI), every command but `show` skips with a
one-line notice, exiting 0, unless MLFLOW_TRACKING_URI is an http(s) server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmops.config import tracking
from llmops.ship.release import ReleaseError, github_output, is_server

ARTIFACT_PATH = "adapter"  # where the train stage logs the adapter in its run (log_artifacts)
CHALLENGER, CHAMPION = "challenger", "champion"  # registered; serving
PREVIOUS = "previous_champion"  # version tag: the version the alias pointed to before
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # also keeps search filters quote-free
RUN_ID = re.compile(r"[0-9a-f]{32}")
# `record`'s tags: a lowercase key, a value without line breaks (both shown in the registry UI)
RECORD_KEY = re.compile(r"[a-z][a-z0-9_.]{0,62}")
RECORD_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,500}")


class RegistryError(RuntimeError):
    """A registry operation that cannot go ahead; the message says why."""


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    alias: str
    previous: str | None  # the alias's version before (None: it had none)
    created: bool  # False: the run was registered already


def client() -> Any:
    """An MlflowClient on the tracking store (the registry defaults to the same URI)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking.tracking_uri())


def training_run(adapter: Path) -> str:
    """The train stage's run id, from <adapter>/training.json."""
    path = adapter / "training.json"
    try:
        run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id", "")
    except (OSError, ValueError) as err:
        raise RegistryError(f"cannot read the training run id: {err}") from None
    if not RUN_ID.fullmatch(str(run_id)):
        raise RegistryError(f"{path}: no MLflow run id (run_id: {run_id!r})")
    return run_id


def eval_tags(metrics: Path) -> dict[str, str]:
    """The fine-tuned model's eval metrics as version tags: {"eval.json_valid": "1.0", ...}."""
    try:
        tuned = json.loads(metrics.read_text(encoding="utf-8"))["tuned"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RegistryError(f"{metrics}: no fine-tuned model metrics ({err!r})") from None
    return tracking.flatten(tuned, "eval")


def check_run(mlflow: Any, run_id: str) -> None:
    """Fail unless the store holds the run and its adapter artifact."""
    from mlflow.exceptions import MlflowException

    where = tracking.safe_uri(tracking.tracking_uri())
    try:
        mlflow.get_run(run_id)
    except MlflowException:
        raise RegistryError(
            f"run {run_id} is not in {where}: the adapter was trained against another "
            "tracking store (see training.json tracking_uri)"
        ) from None
    if not mlflow.list_artifacts(run_id, ARTIFACT_PATH):
        raise RegistryError(f"run {run_id} has no '{ARTIFACT_PATH}' artifact in {where}")


def alias_version(mlflow: Any, name: str, alias: str) -> str | None:
    """The version `alias` points to, None when it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def ensure_model(mlflow: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        mlflow.create_registered_model(name, description="LoRA adapters (llmops train stage)")


def register(mlflow: Any, name: str, run_id: str, tags: dict[str, str], alias: str) -> Registered:
    """The run's adapter as a version of `name` (reused if registered), tagged, under `alias`
    (the challenger: no alias that serves moves here)."""
    check_run(mlflow, run_id)
    ensure_model(mlflow, name)
    found = mlflow.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if found:
        version = str(min(int(v.version) for v in found))
        for key, value in tags.items():
            mlflow.set_model_version_tag(name, version, key, value)
    else:
        source = f"runs:/{run_id}/{ARTIFACT_PATH}"
        version = str(mlflow.create_model_version(name, source, run_id, tags=tags).version)
    previous = alias_version(mlflow, name, alias)
    if previous != version:
        mlflow.set_registered_model_alias(name, alias, version)
    return Registered(name, version, alias, previous, created=not found)


def aliased(mlflow: Any, name: str, alias: str) -> str:
    """The version `alias` points to; fails when it points nowhere."""
    version = alias_version(mlflow, name, alias)
    if version is None:
        raise RegistryError(f"{name}@{alias} points to no version (run make register first)")
    return version


def record(mlflow: Any, name: str, alias: str, pairs: list[str]) -> dict[str, str]:
    """Tag the version `alias` points to with KEY=VALUE pairs (what serves it), skipping
    pairs with an empty value (a feature not configured); the tags set."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        bad_value = value and not RECORD_VALUE.fullmatch(value)  # empty: not configured, skipped
        if not sep or not RECORD_KEY.fullmatch(key) or bad_value:
            raise RegistryError(
                f"bad record {pair!r}: expected key=value, a lowercase key "
                "(letters, digits, _ .) and a one-line value"
            )
        if value:
            tags[key] = value
    version = aliased(mlflow, name, alias)
    for key, value in tags.items():
        mlflow.set_model_version_tag(name, version, key, value)
    return tags


def deployment_pairs(state: Path) -> list[str]:
    """The deploy record `llmops.ship.release deploy` writes, as `record` pairs: the deployment,
    the Bento it runs and the one it replaced (what a later rollback restores)."""
    try:
        info = json.loads(state.read_text(encoding="utf-8"))
        fields = {
            "deployment": info["deployment"],
            "bento": info["deployed"],
            "previous_bento": info["previous"],
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RegistryError(f"{state}: no deploy record ({err!r})") from None
    return [f"{key}={value or ''}" for key, value in fields.items()]


def promote(mlflow: Any, name: str, source: str, alias: str, version: str = "") -> Registered:
    """Move `alias` (champion) to `version` (the one a release built), else to the version
    `source` (challenger) points to, recording the version it left as `previous_champion`."""
    if version:
        if not version.isdigit():
            raise RegistryError(f"bad version {version!r}: expected a registered version number")
        mlflow.get_model_version(name, version)  # fails when there is no such version
    else:
        version = aliased(mlflow, name, source)
    previous = alias_version(mlflow, name, alias)
    if previous != version:
        if previous is not None:
            mlflow.set_model_version_tag(name, version, PREVIOUS, previous)
        mlflow.set_registered_model_alias(name, alias, version)
    return Registered(name, version, alias, previous, created=False)


def rollback(mlflow: Any, name: str, alias: str) -> tuple[str, str]:
    """Move `alias` to the version its current version recorded as previous; (from, to)."""
    current = alias_version(mlflow, name, alias)
    if current is None:
        raise RegistryError(f"{name}@{alias} points to no version: nothing to roll back")
    previous = mlflow.get_model_version(name, current).tags.get(PREVIOUS)
    if not previous:
        raise RegistryError(
            f"{name}@{alias} is version {current}, which records no {PREVIOUS}: "
            "nothing to roll back to"
        )
    mlflow.get_model_version(name, previous)  # fails if it was deleted
    mlflow.set_registered_model_alias(name, alias, previous)
    return current, previous


def show(mlflow: Any, name: str) -> str:
    """The registered model's versions (newest first), each with its aliases and lineage."""
    model = mlflow.get_registered_model(name)
    by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    lines = [f"{name} ({tracking.safe_uri(tracking.tracking_uri())})"]
    versions = mlflow.search_model_versions(f"name = '{name}'")
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        aliases = ",".join(sorted(by_version.get(str(v.version), []))) or "-"
        tags = v.tags or {}
        extra = "".join(
            f"  {k}={tags[k]}" for k in ("git_commit", "bento_model", PREVIOUS) if k in tags
        )
        lines.append(f"  v{v.version}  aliases={aliases}  run={v.run_id}{extra}")
    if not versions:
        lines.append("  (no versions)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    aliases = {
        "register": CHALLENGER,
        "record": CHALLENGER,
        "promote": CHAMPION,
        "rollback": CHAMPION,
    }
    for command in (*aliases, "show"):
        sub = commands.add_parser(command)
        sub.add_argument("--name", help="registered model (default: params serve.name)")
        sub.add_argument("--params", type=Path, default=Path("params.yaml"))
        if command in aliases:
            sub.add_argument("--alias", default=aliases[command])
            sub.add_argument(
                "--require-server",
                action="store_true",
                help="skip (exit 0) unless MLFLOW_TRACKING_URI is an http(s) server",
            )
    reg = commands.choices["register"]
    reg.add_argument("--adapter", type=Path, required=True)
    reg.add_argument("--eval", type=Path, required=True, help="metrics/eval.json")
    reg.add_argument("--bento-model", default="", help="the BentoML model tag, if packaged")
    record_args = commands.choices["record"]
    record_args.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    record_args.add_argument("--state", type=Path, help="also a deploy record (.release/...)")
    promote_args = commands.choices["promote"]
    promote_args.add_argument("--from", dest="source", default=CHALLENGER, help="its alias")
    promote_args.add_argument("--version", default="", help="this version (default: --from's)")
    return parser.parse_args(argv)


def model_name(args: argparse.Namespace) -> str:
    """--name, else params serve.name; checked, as it goes into search filters."""
    from llmops.config.params import load_params

    name = args.name or load_params(args.params).serve.name
    if not NAME.fullmatch(name):
        raise RegistryError(f"bad registered model name {name!r}: letters, digits, . _ -")
    return name


def run(args: argparse.Namespace) -> str:
    """Do the command; what to print."""
    name = model_name(args)
    mlflow = client()
    if args.command == "show":
        return show(mlflow, name)
    if args.command == "rollback":
        was, now = rollback(mlflow, name, args.alias)
        return f"{name}@{args.alias}: version {was} -> {now}"
    if args.command == "record":
        pairs = args.pairs + (deployment_pairs(args.state) if args.state else [])
        tags = record(mlflow, name, args.alias, pairs)
        return f"{name}@{args.alias}: recorded {', '.join(sorted(tags)) or 'nothing'}"
    if args.command == "promote":
        done = promote(mlflow, name, args.source, args.alias, args.version.strip())
        moved = done.previous != done.version
        github_output({"alias_moved": moved}, os.environ)
        where = f"{name}@{done.alias} -> {done.version}"
        if not moved:
            return f"{where} already"
        return f"{where} (from {args.source}; {PREVIOUS}: {done.previous or 'none'})"
    tags = {"git_commit": tracking.git_commit(), **eval_tags(args.eval)}
    if args.bento_model:
        tags["bento_model"] = args.bento_model
    done = register(mlflow, name, training_run(args.adapter), tags, args.alias)
    github_output({"registered_version": done.version}, os.environ)
    how = "registered" if done.created else "already registered as"
    return f"{how} {name} version {done.version}; {name}@{done.alias} -> {done.version}"


def main(argv: list[str] | None = None) -> None:
    from mlflow.exceptions import MlflowException

    from llmops.config.params import ParamsError

    args = parse_args(argv)
    uri = tracking.tracking_uri()
    if getattr(args, "require_server", False) and not is_server(uri):
        where = tracking.safe_uri(os.environ.get("MLFLOW_TRACKING_URI", "")) or "unset"
        print(
            f"registry {args.command}: skipped, no MLflow tracking server "
            f"(MLFLOW_TRACKING_URI is {where}; --require-server)"
        )
        return
    try:
        print(run(args))
    except (RegistryError, ReleaseError, ParamsError, MlflowException) as err:
        raise SystemExit(f"registry {args.command}: {scrub(str(err), uri)}") from None


def scrub(text: str, uri: str) -> str:
    """`text` without the URI's credentials (an MLflow error may quote the request URL)."""
    userinfo = urlsplit(uri).netloc.rpartition("@")[0]
    return text.replace(f"{userinfo}@", "") if userinfo else text


if __name__ == "__main__":
    main()
