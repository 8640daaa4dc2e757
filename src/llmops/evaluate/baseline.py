"""The baseline a change is compared with: a validated git ref and the files committed there.

The gates (`llmops.evaluate.gate`) and the report (`llmops.report.pullrequest`) read what
the baseline committed with git alone, never a checkout: `check_ref` validates the ref
before any git command sees it, `resolve` turns it into a commit (trying `origin/<ref>` too,
as CI fetches the base branch), and `at_ref` reads one file committed there (`git cat-file
blob <commit>:<path>`).

A ref is a name git accepts for a branch or tag (`git check-ref-format --allow-onelevel`:
main, origin/main, v1.2, HEAD) or a commit id (7-64 hex digits), followed by any number of
`~N` or `^N` ancestry suffixes (`HEAD~1`, `main^`, `main~2^2`). Anything else stops with an
InputError naming it: a leading `-` (git would read an option), control characters, a
reflog `@{...}`, a range, a `ref:path`. Git runs with `LC_ALL=C`, since a check below reads
its English error text.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from llmops.evaluate.metrics import InputError

COMMIT_ID = re.compile(r"[0-9a-fA-F]{7,64}")
ANCESTRY = re.compile(r"(?:[~^][0-9]*)*\Z")  # ~, ~2, ^, ^2 ... at the end of a ref


def check_ref(ref: str) -> str:
    """`ref` once it is a git ref name or commit id with optional `~N`/`^N` suffixes;
    InputError otherwise. Checked before any git command sees it: `-...` would be read as
    an option."""
    safe = ref.isprintable() and not ref.startswith("-")  # no control characters, no option
    name = ANCESTRY.sub("", ref, count=1)  # the ref without its ~N and ^N suffixes
    if not (safe and name and (COMMIT_ID.fullmatch(name) or _is_ref_name(name))):
        raise InputError(
            f"baseline ref {ref!r} is not a valid git ref name or commit id, optionally "
            "followed by ~N or ^N (git check-ref-format); set BASELINE to a branch, tag or "
            "commit, e.g. main"
        )
    return ref


def _is_ref_name(name: str) -> bool:
    return _git("check-ref-format", "--allow-onelevel", name).returncode == 0


def resolve(ref: str, cwd: Path | None = None) -> str:
    """The commit `ref` names, else `origin/<ref>`; InputError when `ref` is not valid or
    git knows neither."""
    check_ref(ref)
    for candidate in (ref, f"origin/{ref}"):
        done = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=cwd)
        if done.returncode == 0:
            return done.stdout.decode().strip()
        if b"not a git repository" in done.stderr:
            raise InputError(f"baseline ref {ref!r}: {cwd or Path.cwd()} is not a git repository")
    # An error, not a skip: a ref that is missing (a typo, a CI checkout without the base
    # branch) would otherwise pass every regression gate unchecked. A first run has the ref
    # but no metrics committed there, and that is a skip (gate.baseline_metrics: None).
    raise InputError(f"baseline ref {ref!r} not found (fetch it or set BASELINE)")


def at_ref(ref: str, path: str, cwd: Path | None = None) -> str | None:
    """A committed file's text at `ref` (or `origin/<ref>`), or None when that commit has no
    such file; InputError when the ref is invalid or unknown or the file is not UTF-8."""
    commit = resolve(ref, cwd)
    done = _git("cat-file", "blob", f"{commit}:{path}", cwd=cwd)
    if done.returncode != 0:
        return None
    try:
        return done.stdout.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path} at {ref}: not UTF-8 (byte {err.start})") from None


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # The C locale: `resolve` matches git's English "not a git repository".
    env = os.environ | {"LC_ALL": "C", "LANG": "C"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env)
