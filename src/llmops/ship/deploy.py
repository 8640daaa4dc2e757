"""Blue/green deployment on this machine: a new Bento takes the traffic only if it passes.

Run: python -m llmops.ship.deploy local --bento llmops-service:latest --port 3000 \
       --state .deploy/local.json --params params.yaml --data data/prepared/test.jsonl \
       [--smoke-arg=--budget-ms=5000 ...] [--drain-s 5] [--ready-timeout 180]
     python -m llmops.ship.deploy status [--state .deploy/local.json]
     python -m llmops.ship.deploy stop [--state .deploy/local.json]

Clients use 127.0.0.1:PORT, where `llmops.ship.proxy` (started here if not running) forwards to
the active server. `local` serves the Bento (its tag resolved first, so what is recorded is
what runs) with `bentoml serve` on a free loopback port beside the running one, waits for
/readyz (giving up once a service has failed to start twice: BentoML retries for ever),
checks that it serves the model version the Bento pins (its build argument; a Bento built
without one would serve the newest in the store), and smoke-tests it directly
(`llmops.ship.smoke`; the API key from the variable params.yaml `serve.api_key_env` names).
If all passes, the state file becomes active = new, previous = old; once the proxy reports
the new backend, requests still in flight to the old one get up to --drain-s seconds, then
the old server stops. If anything fails, the new server stops, the state and the old server
are left as they were, and the reason (the smoke summary, the log's tail) is printed: exit 1.

Processes started here run detached (their own session) and outlive the command; their
pids and start times are in the state, so `stop` finds them and a reused pid is never
signalled. Servers log to <state folder>/<bento>-<version>.<port>.log, the proxy to
proxy.log. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx

from llmops.config.params import load_params
from llmops.ship import proxy, smoke
from llmops.ship.detached import Spawned, running, spawn, spawned, terminate, wait_until
from llmops.ship.localserver import free_port, stop, wait_ready

log = logging.getLogger(__name__)
SWITCH_TIMEOUT = 15.0  # seconds for the proxy to report the new backend


class DeployError(Exception):
    """Why a deployment did not happen (what is running is unchanged)."""


@dataclass(frozen=True)
class Server(Spawned):
    """A `bentoml serve` started by a deploy."""

    tag: str  # the Bento, resolved (never `latest`)
    version: str  # the served model's version, from its GET /v1/models
    url: str
    deployed_at: float = 0.0


@dataclass(frozen=True)
class State:
    """The state file: what the proxy forwards to (`active.url`) and how to stop it all."""

    proxy: Spawned | None = None
    port: int = 0  # the proxy's
    active: Server | None = None
    previous: Server | None = None  # the server `active` replaced (stopped), for rollback

    @classmethod
    def read(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        proxy, active, previous = (raw.get(k) for k in ("proxy", "active", "previous"))
        return cls(
            proxy=Spawned(**proxy) if proxy else None,
            port=raw.get("port", 0),
            active=Server(**active) if active else None,
            previous=Server(**previous) if previous else None,
        )

    def write(self, path: Path) -> None:
        """Atomically (a temporary file renamed over it): the proxy never reads half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(f.name, path)


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """One deploy or stop at a time per state file."""
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_proxy(state: State, port: int, path: Path) -> State:
    """The state with a live proxy on `port`: the recorded one, else one started now."""
    if running(state.proxy):
        if state.port != port:
            raise DeployError(
                f"the proxy of {path} runs on port {state.port}, not {port}: "
                "use that port, or `python -m llmops.ship.deploy stop` first"
            )
        return state
    logfile = path.parent / "proxy.log"
    try:
        process = proxy.start(port, path, logfile)
    except RuntimeError as err:
        raise DeployError(str(err)) from None
    state = replace(state, proxy=spawned(process, logfile), port=port)
    state.write(path)
    log.info("proxy: http://127.0.0.1:%d (pid %d, log %s)", port, process.pid, logfile)
    return state


def resolve(tag: str) -> tuple[str, set[str]]:
    """The Bento's full tag (`latest` resolved) and the model versions it pins."""
    import bentoml

    try:
        bento = bentoml.bentos.get(tag)
    except bentoml.exceptions.BentoMLException as err:
        raise DeployError(f"no Bento {tag} in the store ({err})") from None
    return str(bento.tag), {str(m.tag.version) for m in bento.info.all_models}


def served_version(url: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.get(f"{url}/v1/models", headers=headers, timeout=30)
    r.raise_for_status()
    return str(r.json()["data"][0]["version"])


def candidate(
    tag: str, pinned: set[str], folder: Path, smoke_argv: list[str], key: str, timeout: float
) -> Server:
    """Serve `tag` on a free port, check it serves a model it pins and smoke-test it;
    stopped again if anything fails."""
    port = free_port()
    logfile = folder / f"{tag.replace(':', '-')}.{port}.log"
    bentoml = Path(sys.executable).with_name("bentoml")
    url = f"http://127.0.0.1:{port}"
    command = [str(bentoml), "serve", tag, "--host", "127.0.0.1", "--port", str(port)]
    logfile.unlink(missing_ok=True)  # an old server's, from when the port was last free
    process = spawn(command, logfile)
    log.info("serving %s at %s (pid %d, log %s)", tag, url, process.pid, logfile)
    try:
        wait_ready(url, process, timeout, logfile)
        version = served_version(url, key)
        if pinned and version not in pinned:  # e.g. a Bento built without the model argument
            raise DeployError(
                f"{tag} pins model version {', '.join(sorted(pinned))} but its server loaded "
                f"{version}"
            )
        log.info("%s is ready (model %s); smoke test", tag, version)
        ok, summary = smoke.run_smoke([url, *smoke_argv])
        print(summary)
        if not ok:
            raise DeployError(f"{tag} failed its smoke test ({summary.splitlines()[-1]})")
    except BaseException as err:
        log.info("stopping %s (pid %d)", tag, process.pid)
        stop(process, grace=5.0)  # it took no traffic (a crash-looping one ignores SIGINT)
        if isinstance(err, RuntimeError | httpx.HTTPError):
            raise DeployError(f"{tag} did not come up (log {logfile}): {err}") from None
        raise
    return Server(**asdict(spawned(process, logfile)), tag=tag, version=version, url=url)


def switch(state: State, new: Server, path: Path, drain_s: float) -> State:
    """Make `new` active; once the proxy follows, drain and stop the old server."""
    old = state.active
    after = replace(state, active=replace(new, deployed_at=time.time()), previous=old)
    after.write(path)
    if not wait_until(
        lambda: (proxy.status(state.port) or {}).get("backend") == new.url, SWITCH_TIMEOUT
    ):
        state.write(path)
        terminate(new)
        raise DeployError(
            f"the proxy on port {state.port} did not switch to {new.url} "
            f"in {SWITCH_TIMEOUT:g} s; see {path.parent / 'proxy.log'}"
        )
    log.info("switched 127.0.0.1:%d to %s (%s)", state.port, new.tag, new.version)
    if old is not None:
        started = time.monotonic()
        drained = wait_until(
            lambda: not (proxy.status(state.port) or {}).get("inflight", {}).get(old.url), drain_s
        )
        how = f"drained in {time.monotonic() - started:.1f} s" if drained else "still busy"
        log.info("old server %s %s; stopping it (pid %d)", old.url, how, old.pid)
        terminate(old)
    return after


def deploy(args: argparse.Namespace) -> Server:
    """Serve args.bento beside the active server; switch to it only if it passes."""
    params = load_params(args.params)
    key = os.environ.get(params.serve.api_key_env, "")
    smoke_argv = ["--params", str(args.params), "--data", str(args.data), *args.smoke_arg]
    tag, pinned = resolve(args.bento)
    path = args.state.resolve()
    with locked(path):
        state = ensure_proxy(State.read(path), args.port, path)
        new = candidate(tag, pinned, path.parent, smoke_argv, key, args.ready_timeout)
        return switch(state, new, path, args.drain_s).active or new


def describe(state: State) -> str:
    """What `status` prints: the proxy, the active and the previous server."""
    if state.proxy is None and state.active is None:
        return "nothing deployed"
    live = proxy.status(state.port) if running(state.proxy) else None
    where = f"proxy     http://127.0.0.1:{state.port}"
    if live is None or state.proxy is None:
        lines = [f"{where} DOWN (deploy again to restart it)"]
    else:
        busy = live.get("inflight") or "none"
        lines = [f"{where} (pid {state.proxy.pid}) -> {live.get('backend')}, in flight: {busy}"]
    for name, s in (("active", state.active), ("previous", state.previous)):
        if s is not None:
            up = "up" if running(s) else "stopped"
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.deployed_at))
            lines.append(
                f"{name:<9} {s.tag} model {s.version} at {s.url} ({up}, pid {s.pid}, "
                f"deployed {when}, log {s.log})"
            )
    return "\n".join(lines)


def stop_all(path: Path) -> str:
    """Stop the proxy and the servers it started; remove the state file."""
    with locked(path):
        state = State.read(path)
        stopped = []
        # the proxy first (it finishes what is in flight): then no client meets a dead backend
        for name, p in (
            ("proxy", state.proxy),
            ("active", state.active),
            ("previous", state.previous),
        ):
            if running(p):
                assert p is not None
                terminate(p, grace=15.0 if name != "proxy" else 5.0)
                stopped.append(f"{name} (pid {p.pid})")
        path.unlink(missing_ok=True)
    return f"stopped: {', '.join(stopped)}" if stopped else "nothing was running"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="deploy a Bento behind the loopback proxy")
    local.add_argument("--bento", required=True, help="Bento tag, e.g. llmops-service:latest")
    local.add_argument("--port", type=int, default=3000, help="the proxy's port (127.0.0.1)")
    local.add_argument("--params", type=Path, default=Path("params.yaml"))
    local.add_argument("--data", type=Path, required=True, help="the test split (JSONL)")
    local.add_argument(
        "--smoke-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="for llmops.ship.smoke, e.g. --smoke-arg=--budget-ms=5000",
    )
    local.add_argument("--drain-s", type=float, default=5.0, help="most seconds to drain")
    local.add_argument("--ready-timeout", type=float, default=180.0)
    for command in (local, commands.add_parser("status"), commands.add_parser("stop")):
        command.add_argument("--state", type=Path, default=Path(".deploy/local.json"))
    args = parser.parse_args(argv)
    if args.command == "local":  # a wrong smoke argument fails now, before anything starts
        smoke.parse_args(["http://127.0.0.1", "--data", str(args.data), *args.smoke_arg])
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="deploy: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    args = parse_args(argv)
    if args.command == "status":
        print(describe(State.read(args.state)))
    elif args.command == "stop":
        print(stop_all(args.state.resolve()))
    else:
        try:
            server = deploy(args)
        except DeployError as err:
            print(f"deploy: FAILED, nothing switched: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"deploy: {server.tag} (model {server.version}) serves http://127.0.0.1:{args.port}")


if __name__ == "__main__":
    main()
