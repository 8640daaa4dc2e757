"""Blue/green deployment on loopback (python -m llmops.ship.deploy) with real `bentoml serve`
servers behind the real proxy, while a client thread keeps sending requests through it: the
good Bento goes live; a Bento whose model weights are corrupt is refused, its server gone;
a second good build takes over; a good build failing its smoke test is refused; the first
Bento, deployed again, serves the model version it pins (a rollback). No request fails
throughout, and `stop` ends every process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
import pytest

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.ship.localserver import free_port
from tests.bentos import KEY

pytestmark = pytest.mark.e2e
# The tests' tiny model writes no JSON (tests/e2e/test_smoke.py), and this machine is slow.
TINY = ("--smoke-arg=--min-parsed=0", "--smoke-arg=--min-label-match=0",
        "--smoke-arg=--budget-ms=30000")  # fmt: skip

# Run with BENTOML_HOME set (bentoml reads it at import) in the project folder (bentofile.yaml
# and build/bento/ from the good build): a new version of the good model, its weights files
# cut to 64 bytes when argv[2] is "corrupt", and a Bento of it (the build pins the newest).
NEW_BUILD = """
import shutil, sys
from pathlib import Path
import bentoml

good = bentoml.models.get(sys.argv[1])
with bentoml.models.create(good.tag.name, labels=good.info.labels,
                           metadata=good.info.metadata) as model:
    for item in Path(good.path).iterdir():
        if item.name != "model.yaml":  # bentoml writes the new model's own
            copy = shutil.copytree if item.is_dir() else shutil.copy2
            copy(item, Path(model.path) / item.name)
    for weights in Path(model.path).rglob("*.safetensors"):
        if sys.argv[2] == "corrupt":
            weights.write_bytes(weights.read_bytes()[:64])
print("model:", model.tag.version)
# Pinned as make bento pins it (llmops.ship.bento.build): the model tag as a build argument.
print("bento:", bentoml.bentos.build_bentofile("bentofile.yaml", args={"model": str(model.tag)}).tag)
"""


@dataclass(frozen=True)
class Deployment:
    """The deploy command on a temporary state file, with the test Bento's environment."""

    port: int
    state: Path
    env: dict
    project: Path
    model: str  # serve.name, the model id of the OpenAI API

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        argv = [
            sys.executable,
            "-m",
            "llmops.ship.deploy",
            command,
            *args,
            "--state",
            str(self.state),
        ]
        return subprocess.run(argv, env=self.env, cwd=self.project, capture_output=True,
                              text=True, timeout=600)  # fmt: skip

    def local(self, tag: str, *more: str) -> subprocess.CompletedProcess:
        data = self.project / "data" / "prepared" / "test.jsonl"
        return self.run("local", "--bento", tag, "--port", str(self.port), "--params",
                        str(self.project / "params.yaml"), "--data", str(data), *TINY,
                        "--drain-s", "5", "--ready-timeout", "120", *more)  # fmt: skip

    def active(self) -> dict:
        return json.loads(self.state.read_text())["active"]


class Traffic:
    """Clients of the proxy in a thread, until stopped: POST /v1/answer, GET /readyz and a
    streamed chat completion, in turn; every status (or exception) is recorded, and the
    model version of each answer. On exit it goes on for AFTER more requests first, so some
    reach whatever serves once the deploy is over."""

    AFTER = 6

    def __init__(self, url: str, task: Task, model: str) -> None:
        self.url = url
        self.inputs = {f.name: "the kettle broke after two days" for f in task.inputs}
        self.model = model
        self.outcomes: list[tuple[str, int | str]] = []
        self.versions: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        wanted, deadline = len(self.outcomes) + self.AFTER, time.monotonic() + 60
        while len(self.outcomes) < wanted and time.monotonic() < deadline:
            time.sleep(0.1)
        self.done.set()
        self.thread.join(120)

    def answer(self, client: httpx.Client) -> int:
        r = client.post("/v1/answer", json={"input": self.inputs})
        if r.status_code == 200:
            self.versions.append(r.json()["version"])
        return r.status_code

    def stream(self, client: httpx.Client) -> int:
        """A streamed chat completion: 200 when it ends with OpenAI's [DONE] event."""
        (text,) = self.inputs.values()  # the tests' task has one input: the message is it
        body = {"model": self.model, "stream": True, "max_tokens": 8,
                "messages": [{"role": "user", "content": text}]}  # fmt: skip
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = [line for line in r.iter_lines() if line]
        return r.status_code if lines[-1:] == ["data: [DONE]"] else -r.status_code

    def run(self) -> None:
        requests: list[tuple[str, Callable[[httpx.Client], int]]] = [
            ("answer", self.answer), ("readyz", lambda c: c.get("/readyz").status_code),
            ("stream", self.stream),
        ]  # fmt: skip
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as client:
            while not self.done.is_set():
                for name, send in requests:
                    try:
                        self.outcomes.append((name, send(client)))
                    except Exception as err:  # any failure is a finding, not a crash
                        self.outcomes.append((name, f"{type(err).__name__}: {err}"))

    def failures(self) -> list[tuple[str, int | str]]:
        return [o for o in self.outcomes if o[1] != 200]

    def served(self) -> list[str]:
        """The model versions that answered, in order, each once: [v1, v2] for a switch."""
        return [v for i, v in enumerate(self.versions) if i == 0 or self.versions[i - 1] != v]


@pytest.fixture(scope="module")
def deployment(bento, tmp_path_factory):
    """Deploys on a free port, in a copy of the test Bento's store (the broken build below
    must not become the session's `latest`); everything stopped at the end."""
    root = tmp_path_factory.mktemp("deploy")
    shutil.copytree(bento.home, root / "bentoml")
    env = {**bento.env, "BENTOML_HOME": str(root / "bentoml"), "LLMOPS_TEST_API_KEY": KEY,
           "LLMOPS_LOG_DIR": str(root / "logs")}  # fmt: skip
    name = bento.model.split(":")[0]
    deployed = Deployment(free_port(), root / ".deploy" / "local.json", env, bento.project, name)
    yield deployed
    deployed.run("stop")


def new_build(deployment: Deployment, model: str, how: str) -> tuple[str, str]:
    """A new model version made from `model` (`how`: "corrupt" or "intact") and a Bento of
    it in the deployment's store; (Bento tag, model version)."""
    done = subprocess.run([sys.executable, "-c", NEW_BUILD, model, how], env=deployment.env,
                          cwd=deployment.project, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = dict(re.findall(r"^(model|bento): (\S+)$", done.stdout, re.MULTILINE))
    return found["bento"], found["model"]


def served_version(url: str) -> str:
    r = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"][0]["version"]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def deploy_under_traffic(deployment: Deployment, tag: str, task: Task, *more: str):
    """Deploy `tag` while Traffic runs through the proxy, none of its requests failing; the
    command's result, the versions that answered, and a line on the time and requests."""
    started = time.monotonic()
    with Traffic(deployment.url, task, deployment.model) as traffic:
        done = deployment.local(tag, *more)
        took = time.monotonic() - started
    assert not traffic.failures(), traffic.failures()
    line = (
        f"{took:.0f} s, {len(traffic.outcomes)} requests, 0 failed, answered by {traffic.served()}"
    )
    return done, traffic.served(), line


def refused(deployment: Deployment, tag: str, task: Task, *more: str):
    """Deploy `tag`, which must fail leaving the state, the served version and every
    request untouched, its server stopped; the command's result and the report line."""
    before, serving = deployment.state.read_bytes(), served_version(deployment.url)
    done, versions, line = deploy_under_traffic(deployment, tag, task, *more)
    assert versions == [serving]
    assert done.returncode == 1 and "FAILED, nothing switched" in done.stderr, done.stderr
    served = re.search(r"serving \S+ at \S+ \(pid (\d+)", done.stderr)
    assert served, f"refused before a server started:\n{done.stderr[-3000:]}"
    pid = int(served.group(1))
    assert gone(pid), f"the refused server (pid {pid}) still runs"
    assert deployment.state.read_bytes() == before
    assert served_version(deployment.url) == serving
    return done, f"{tag} refused: {line}"


def test_broken_builds_are_refused_and_switches_lose_no_request(bento, deployment):
    task = Task.from_params(load_params(bento.project / "params.yaml").task)
    v1 = bento.model.split(":")[1]
    started = time.monotonic()
    first = deployment.local(bento.tag)
    assert first.returncode == 0, first.stderr[-3000:]
    assert served_version(deployment.url) == v1
    report = [f"first deploy of {bento.tag} (model {v1}): {time.monotonic() - started:.0f} s"]
    blue = deployment.active()

    broken, v2 = new_build(deployment, bento.model, "corrupt")
    corrupt, line = refused(deployment, broken, task)
    assert "failed to start 2 times" in corrupt.stderr and "SafetensorError" in corrupt.stderr
    report.append(f"model {v2} with corrupt weights: {line}")

    good, v3 = new_build(deployment, bento.model, "intact")
    second, versions, line = deploy_under_traffic(deployment, good, task)
    assert versions == [v1, v3]  # v1 until the switch, v3 from then on
    assert second.returncode == 0, second.stderr[-3000:]
    green = deployment.active()
    assert (green["tag"], green["version"]) == (good, v3) and green["url"] != blue["url"]
    assert json.loads(deployment.state.read_text())["previous"]["url"] == blue["url"]
    assert gone(blue["pid"]), "the replaced server still runs"
    assert served_version(deployment.url) == v3
    report.append(f"switch {v1} -> {v3} ({good}): {line}")

    # A good build failing its smoke test (a latency budget no server meets) is refused, the
    # smoke summary printed.
    slow, line = refused(deployment, good, task, "--smoke-arg=--budget-ms=1")
    assert "failed its smoke test" in slow.stderr, slow.stderr
    assert re.search(r"^latency +FAIL ", slow.stdout, re.MULTILINE), slow.stdout
    report.append(f"1 ms latency budget: {line}")

    # Rolling back: the first Bento pins v1 (a build argument), so it serves v1 although v3
    # is newer in the store.
    back, versions, line = deploy_under_traffic(deployment, bento.tag, task)
    assert back.returncode == 0, back.stderr[-3000:]
    assert versions == [v3, v1] and served_version(deployment.url) == v1
    assert gone(green["pid"]), "the replaced server still runs"
    report.append(f"rollback {v3} -> {v1} ({bento.tag}): {line}")
    green = deployment.active()

    status = deployment.run("status")
    assert status.returncode == 0 and green["url"] in status.stdout, status.stdout
    print("\n" + "\n".join(report) + f"\n{status.stdout}")

    proxy = json.loads(deployment.state.read_text())["proxy"]
    stopped = deployment.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert gone(proxy["pid"]) and gone(green["pid"]) and not deployment.state.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{deployment.url}/readyz")


def test_a_wrong_smoke_argument_fails_before_anything_starts(deployment, tmp_path):
    elsewhere = replace(deployment, state=tmp_path / ".deploy" / "local.json")
    done = elsewhere.run("local", "--bento", "x:y", "--data", "d.jsonl",
                         "--smoke-arg=--no-such-option")  # fmt: skip
    assert done.returncode == 2 and "--no-such-option" in done.stderr
    assert not (tmp_path / ".deploy").exists()
