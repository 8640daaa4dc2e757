"""Processes that outlive the command that started them: start detached, find, stop.

    p = spawned(spawn(["bentoml", "serve", ...], Path("server.log")), Path("server.log"))
    ...  # record p (pid, start time, log) in a file; later, from another process:
    terminate(p)

llmops.ship.deploy starts its proxy and servers this way. A process is identified by its pid
and its start time, so a pid the system has since given to another process is never
signalled; a zombie counts as gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Spawned:
    """A detached process started here; `started` (its start time) tells it from a reused pid."""

    pid: int
    started: float
    log: str


def spawn(
    command: list[str], logfile: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start `command` detached (own session, so Ctrl+C here does not reach it), its output
    appended to `logfile`; `env` adds to this process's environment."""
    with open(logfile, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )


def spawned(process: subprocess.Popen, logfile: Path) -> Spawned:
    """What to record of a process `spawn` started, to find it again later."""
    return Spawned(process.pid, psutil.Process(process.pid).create_time(), str(logfile))


def running(p: Spawned | None) -> psutil.Process | None:
    """The live process `p` recorded, or None (gone, a zombie, or its pid reused)."""
    if p is None:
        return None
    try:
        proc = psutil.Process(p.pid)
        same = abs(proc.create_time() - p.started) < 0.5
        return proc if same and proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def terminate(p: Spawned | None, grace: float = 15.0) -> None:
    """SIGINT (as Ctrl+C), then SIGTERM and SIGKILL to its process group (a server's workers)."""
    if running(p) is None:
        return
    assert p is not None
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGINT:  # to the server alone, which then stops its workers
                os.kill(p.pid, sig)
            else:
                os.killpg(p.pid, sig)
        deadline = time.monotonic() + wait
        while running(p) and time.monotonic() < deadline:
            time.sleep(0.2)
        if running(p) is None:
            break
    with contextlib.suppress(ProcessLookupError, PermissionError):  # workers left behind
        os.killpg(p.pid, signal.SIGKILL)


def wait_until(check: Callable[[], object], timeout: float, every: float = 0.2) -> bool:
    """Poll `check` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def tail(logfile: Path, lines: int = 20) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
