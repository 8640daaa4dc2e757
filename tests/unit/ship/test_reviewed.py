"""What the release ships (llmops.ship.reviewed), on a real DVC repository of its own: one stage
whose command leaves a mark when it runs, its output pushed to a folder remote, then a
fresh clone of the commit. The release takes the recorded output from the remote, or
refuses in one line; it never runs the stage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STAGE = """stages:
  make:
    cmd: python make.py
    deps: [make.py, input.txt]
    outs: [out.txt]
"""
MAKE = """import pathlib
pathlib.Path("out.txt").write_text(pathlib.Path("input.txt").read_text().upper())
with open("RAN", "a") as mark:  # a stage that ran leaves this behind
    mark.write("ran\\n")
"""


def run(cwd: Path, *cmd: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")
    return done


def git(cwd: Path, *args: str) -> None:
    run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args)


# A release target configured (an MLflow server; never contacted here): missing outputs
# are then an error, not a rehearsal.
RELEASING = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "BENTOML_CLOUD_API_KEY": "",
             "BENTO_CLOUD_API_KEY": "", "IMAGE_REPOSITORY": ""}  # fmt: skip


def reviewed(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    env = RELEASING | env
    return run(cwd, sys.executable, "-m", "llmops.ship.reviewed", *args, check=False, **env)


@pytest.fixture
def merged(tmp_path) -> Path:
    """A merged commit: the stage reproduced and pushed where it was reviewed, dvc.lock
    committed; returns a fresh clone of it (outputs not there, no DVC cache)."""
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "dvc.yaml").write_text(STAGE)
    (origin / "make.py").write_text(MAKE)
    (origin / "input.txt").write_text("reviewed\n")
    (origin / ".gitignore").write_text("RAN\n")
    git(origin, "init", "-q", "-b", "main")
    run(origin, sys.executable, "-m", "dvc", "init", "-q")
    run(
        origin, sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(tmp_path / "store")
    )
    run(origin, sys.executable, "-m", "dvc", "repro", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "reviewed pipeline")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


def pushed(clone: Path) -> None:
    run(clone.parent / "origin", sys.executable, "-m", "dvc", "push", "-q")


def test_the_recorded_output_comes_from_the_remote_and_nothing_runs(merged, tmp_path):
    pushed(merged)
    out = tmp_path / "github_output"
    done = reviewed(merged, "--remote", "store", GITHUB_OUTPUT=str(out))
    assert done.returncode == 0, done.stderr
    assert "holds exactly the outputs dvc.lock records" in done.stdout
    assert (merged / "out.txt").read_text() == "REVIEWED\n"
    assert not (merged / "RAN").exists()
    assert out.read_text() == "exact=true\n"


def test_outputs_missing_from_the_remote_are_refused_in_one_line(merged, tmp_path):
    out = tmp_path / "github_output"
    done = reviewed(merged, "--remote", "store", GITHUB_OUTPUT=str(out))
    assert done.returncode == 1
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1, done.stderr
    assert line.startswith("reviewed: refusing to release: DVC remote 'store' does not hold")
    assert "out.txt" in line and "make push" in line and "nothing was retrained" in line
    assert not (merged / "out.txt").exists() and not (merged / "RAN").exists()
    assert out.read_text() == "exact=false\n"


def test_code_changed_since_dvc_lock_is_refused_even_with_the_outputs_there(merged):
    pushed(merged)
    (merged / "make.py").write_text(MAKE.replace("upper()", "lower()"))  # not reproduced
    done = reviewed(merged, "--remote", "store")
    assert done.returncode == 1
    assert "make.py" in done.stderr and "changed since dvc.lock" in done.stderr
    assert not (merged / "RAN").exists()


def test_without_a_remote_the_local_cache_is_used(merged):
    shutil.copytree(merged.parent / "origin" / ".dvc" / "cache", merged / ".dvc" / "cache")
    done = reviewed(merged)  # what a restored actions/cache gives
    assert done.returncode == 0, done.stderr
    assert (merged / "out.txt").read_text() == "REVIEWED\n"


@pytest.mark.parametrize("how", ["asked", "nothing to release to"])
def test_a_rehearsal_goes_on_without_the_outputs_and_says_so(merged, tmp_path, how):
    out = tmp_path / "github_output"
    if how == "asked":
        done = reviewed(merged, "--rehearsal", GITHUB_OUTPUT=str(out))
    else:  # no MLflow server, BentoCloud or image registry configured
        done = reviewed(merged, GITHUB_OUTPUT=str(out), MLFLOW_TRACKING_URI="")
    assert done.returncode == 0, done.stderr
    assert "this run only rehearses" in done.stdout
    assert out.read_text() == "exact=false\n"
    assert not (merged / "RAN").exists()


def test_an_option_is_not_taken_for_a_remote_name(merged):
    done = reviewed(merged, "--remote=-v")  # as make passes it: --remote="$$DVC_REMOTE"
    assert done.returncode == 1 and "bad remote name '-v'" in done.stderr
