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
) -> Iterator[str]:
    """Serve `target` (a Bento tag, or service.py's `service:Api` in `cwd`); yield its URL."""
    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port), *args]
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as logfile:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=logfile,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, timeout, Path(logfile.name))
        yield url
    finally:
        stop(process)
        Path(logfile.name).unlink(missing_ok=True)


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{_tail(log)}")


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGINT to the server, then SIGTERM and SIGKILL to its process group (it has workers)."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        if process.poll() is not None:
            break
        try:
            if sig == signal.SIGINT:
                process.send_signal(sig)
            else:
                os.killpg(process.pid, sig)
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    with contextlib.suppress(ProcessLookupError):  # workers left by a server that died first
        os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
