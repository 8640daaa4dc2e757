"""Put in place the exact outputs `dvc.lock` records, or refuse: what the release ships.

Run: python -m llmops.ship.reviewed [--remote NAME] [--rehearsal]

The merge-to-main release ships what the pull request's review saw: the metrics committed
with `dvc.lock` describe the model that `dvc.lock` records, and only that model. So this
never reproduces anything. It fetches the recorded outputs (`dvc pull --remote NAME`, or
`dvc checkout` from the local DVC cache when no remote is named), then asks `dvc status`
whether the workspace holds exactly what `dvc.lock` records (outputs present and
unchanged, and no stage whose code, params or data changed since). If not, it exits 1
with one line saying what is missing and how to put it there (`make push` from the
machine that ran `make repro` for the pull request): nothing is retrained, registered or
deployed. Training again would ship a model nobody reviewed: the same seed gives other
weights on another CPU.

A rehearsal (`--rehearsal`, or when the environment configures nowhere to release to: no
MLflow server, BentoCloud or image registry, see `llmops.ship.release plan`) treats missing
outputs as no error: the job may reproduce them to rehearse packaging and the local
deploy, and has nothing to register or deploy them to. Under GitHub Actions
`exact=true|false` goes to $GITHUB_OUTPUT either way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from llmops.ship.release import github_output, said, targets

SHOWN = 6  # lines of `dvc status` quoted in the refusal


def dvc(*args: str) -> subprocess.CompletedProcess[str]:
    """This environment's dvc (beside the interpreter), its output captured."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("dvc")), *args], capture_output=True, text=True
    )


def fetch(remote: str) -> str:
    """Pull (or check out) the recorded outputs; what failed, "" when nothing did. A
    partial pull is not the verdict: `dvc status` afterwards is."""
    done = dvc("pull", "--remote", remote) if remote else dvc("checkout")
    return "" if done.returncode == 0 else said(done).strip()


def differences() -> list[str]:
    """What `dvc status` reports (empty: the workspace is exactly what dvc.lock records)."""
    done = dvc("status")
    text = done.stdout.strip()
    if done.returncode != 0:
        return [line for line in (done.stderr.strip() or text or "dvc status failed").splitlines()]
    return [] if "up to date" in text else [line.rstrip() for line in text.splitlines()]


def verdict(remote: str, fetched: str, changed: list[str], rehearsal: bool) -> tuple[bool, str]:
    """Whether the release may go on, and the line to print."""
    if not changed:
        return True, "reviewed: the workspace holds exactly the outputs dvc.lock records"
    where = f"DVC remote {remote!r}" if remote else "the local DVC cache (no DVC_REMOTE set)"
    shown = "; ".join(" ".join(line.split()) for line in changed[:SHOWN] if line.strip())
    more = f" (+{len(changed) - SHOWN} lines)" if len(changed) > SHOWN else ""
    why = f"{where} does not hold the outputs dvc.lock records"
    why += f" ({fetched})" if fetched else ""
    if rehearsal:
        return True, (
            f"reviewed: {why}; nothing is configured to release to, so this run "
            f"only rehearses (dvc status: {shown}{more})"
        )
    return False, (
        f"reviewed: refusing to release: {why}, or the code, params or data "
        f"changed since dvc.lock; dvc status: {shown}{more}. Run make repro and "
        "make push where the pull request was reproduced, commit dvc.lock, and "
        "merge again; nothing was retrained, registered or deployed"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote", default="", help="a remote in .dvc/config (default: none)")
    parser.add_argument(
        "--rehearsal", action="store_true", help="missing outputs are no error: nothing is released"
    )
    args = parser.parse_args(argv)
    remote = args.remote.strip()
    if remote.startswith("-"):
        raise SystemExit(f"reviewed: bad remote name {remote!r}: a name from .dvc/config")
    fetched = fetch(remote)
    changed = differences()
    rehearsal = args.rehearsal or not any(targets(os.environ).values())
    ok, line = verdict(remote, fetched, changed, rehearsal)
    github_output({"exact": not changed}, os.environ)
    print(line, file=sys.stdout if ok else sys.stderr)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
