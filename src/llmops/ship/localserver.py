"""Start a Bento under the real `bentoml serve` on a loopback port, and stop it.

    with running("llmops-service:latest", env={"LLMOPS_API_KEY": "..."}) as url:
        httpx.get(f"{url}/readyz")

Used by the benchmark (make bench-serve) and the tests; `make serve` runs `bentoml serve`
itself. The server binds 127.0.0.1 on a free port and is ready when /readyz answers 200
(BentoML probes the generator service too). On exit it gets SIGINT, as Ctrl+C would send
(`bentoml serve` may ignore an early SIGTERM), then its process group SIGTERM and SIGKILL if
it lingers. Its output goes to a log file, shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from llmops.ship.detached import spawn, spawned, tail, terminate

STARTUP_ERROR = "Initializing service error"  # BentoML's log line when a service's init fails
FAILED_STARTS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(
    target: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180.0,
    args: tuple[str, ...] = (),
    log: Path | None = None,
) -> Iterator[str]:
    """Serve `target` (a Bento tag, or service.py's `service:Api` in `cwd`); yield its URL.
    The server's output goes to `log`, kept, or to a temporary file removed at the end."""
    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port), *args]
    logfile = log
    if logfile is None:
        with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as handle:
            logfile = Path(handle.name)
    process = spawn(command, logfile, env, cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, timeout, logfile)
        yield url
    finally:
        stop(process)
        if log is None:
            logfile.unlink(missing_ok=True)


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Wait for /readyz to answer 200; fail when the server exits, or once a service has
    failed to start FAILED_STARTS times (BentoML restarts a failing worker every 10 s for
    ever, so such a server never exits and never gets ready)."""
    import httpx

    deadline, last = time.monotonic() + timeout, "never answered"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{tail(log)}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            if r.status_code == 200:
                return
            last = f"answered {r.status_code}, not ready"
        except httpx.HTTPError as err:
            last = f"no answer ({type(err).__name__})"
        if log.read_text(errors="replace").count(STARTUP_ERROR) >= FAILED_STARTS:
            raise RuntimeError(f"a service failed to start {FAILED_STARTS} times:\n{tail(log)}")
        time.sleep(0.5)
    raise RuntimeError(f"{url}/readyz: {last} after {timeout:.0f} s:\n{tail(log)}")


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop a server started here (`llmops.ship.detached.terminate`: SIGINT, then SIGTERM and
    SIGKILL to its process group) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(psutil.Error):
            terminate(spawned(process, Path()), grace)
    process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):  # workers of a dead server
        os.killpg(process.pid, signal.SIGKILL)
