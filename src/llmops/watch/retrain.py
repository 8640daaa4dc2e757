"""The monitor workflow's side of GitHub: one issue while thresholds are crossed, and a
retraining pull request when users corrected enough answers.

Run (monitor.yml, on the default branch's code, with $GITHUB_TOKEN):
    python -m llmops.watch.retrain issue --figures reports/monitor/figures.json \
        --repo owner/name [--run-url URL]
    python -m llmops.watch.retrain pull-request --harvest data/harvest --repo owner/name \
        --base main [--dvc-remote NAME]

`issue`: when figures.json (`make monitor`) lists crossed thresholds, the open issue whose
body starts with MARKER is updated (its body replaced, a comment saying it was crossed
again), else one is opened with the label `monitoring`; when none is crossed and such an
issue is open, it gets a comment saying the figures are back within their thresholds (a
person closes it). Only numbers, threshold names and the run's address are posted: the
figures hold no user text, and what is posted is defused like the report comment.

`pull-request`: when the newest harvest's provenance (`data/harvest/<batch>.json`, written
by `make harvest`) says `enough` (`harvest.min_corrections` reached), the batch and its
provenance (or, when DVC tracks data/raw, `data/raw.dvc` after `dvc add` and `dvc push`) are
committed to a new branch `retrain/<batch>` from `--base`, through the contents API, and a
pull request opens with the provenance; the model-report workflow then evaluates it like
any other. The branch name comes from the batch, so a second run on the same window does
nothing. A pull request opened with the workflow's own GITHUB_TOKEN starts no workflow (a
GitHub rule): give RETRAIN_TOKEN (an App or fine-grained token with contents and pull
requests write) to have it evaluated at once; else a person closes and reopens it.

Both go through the GitHub REST API ($GITHUB_API_URL, default api.github.com) with
`llmops.report.comment.github`; a failed call is one line naming it, exit 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from pathlib import Path

from llmops.report.comment import CommentError, defuse, github

MARKER = "<!-- llmops:monitor -->"
LABEL = "monitoring"
BRANCH = re.compile(r"[A-Za-z0-9._-]{1,100}")


def issue_body(figures: dict, run_url: str) -> str:
    """The issue's text: each crossed threshold with its limit and value, then the run."""
    crossed = figures.get("crossed") or []
    lines = ["## The served model crossed its monitoring thresholds", ""]
    lines += ["| threshold | limit | value |", "|---|---|---|"]
    for item in crossed:
        lines.append(f"| {item.get('threshold')} | {item.get('limit')} | {item.get('value')} |")
    window = figures.get("window") or {}
    lines += ["", f"Window: {window.get('since', '?')} to {window.get('until', '?')}."]
    if run_url:
        lines.append(f"Report (HTML and figures.json): the artefacts of {run_url}")
    lines.append("Thresholds: params.yaml `monitor` (docs/monitoring.md).")
    return MARKER + "\n" + defuse("\n".join(lines))


def find_issue(repo: str, api: str, token: str) -> int | None:
    """The number of the open issue labelled LABEL whose body starts with MARKER."""
    url = f"{api}/repos/{repo}/issues?state=open&labels={LABEL}&per_page=100"
    issues, _ = github("GET", url, token)
    for item in issues if isinstance(issues, list) else ():
        if str(item.get("body") or "").startswith(MARKER) and "pull_request" not in item:
            return int(item["number"])
    return None


def issue(figures_path: Path, repo: str, api: str, token: str, run_url: str = "") -> str:
    """Open, update or comment on the monitoring issue; what was done, in a few words."""
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    found = find_issue(repo, api, token)
    if not figures.get("crossed"):
        if found is None:
            return "within thresholds; no issue open"
        note = defuse(f"Back within the monitoring thresholds ({run_url or 'this run'}).")
        github("POST", f"{api}/repos/{repo}/issues/{found}/comments", token, {"body": note})
        return f"within thresholds; commented on #{found}"
    body = issue_body(figures, run_url)
    names = ", ".join(str(c.get("threshold")) for c in figures["crossed"])
    if found is None:
        title = f"Monitoring: {names}"[:200]
        made, _ = github(
            "POST",
            f"{api}/repos/{repo}/issues",
            token,
            {"title": title, "body": body, "labels": [LABEL]},
        )
        return f"opened #{made.get('number')}"
    github("PATCH", f"{api}/repos/{repo}/issues/{found}", token, {"body": body})
    note = defuse(f"Crossed again: {names} ({run_url or 'this run'}).")
    github("POST", f"{api}/repos/{repo}/issues/{found}/comments", token, {"body": note})
    return f"updated #{found}"


def newest(folder: Path) -> Path | None:
    """The newest harvest's provenance in `folder` (batch names sort by their window)."""
    found = sorted(folder.glob("harvest-*.json")) if folder.is_dir() else []
    return found[-1] if found else None


def batch_files(provenance: dict, path: Path, remote: str) -> list[Path]:
    """What the pull request commits: the provenance, and the batch itself, or, when DVC
    tracks data/raw (data/raw.dvc), the updated data/raw.dvc after `dvc add` and `dvc push`
    to `remote` (the DVC remote, "" for the default one)."""
    batch = Path(provenance["raw"])
    tracked = Path("data/raw.dvc")
    if not tracked.exists():
        return [batch, path]
    import subprocess

    push = ["dvc", "push", *(["--remote", remote] if remote else []), str(tracked)]
    for command in (["dvc", "add", "data/raw"], push):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise CommentError(f"{' '.join(command)}: {' '.join(done.stderr.split())[-300:]}")
    return [tracked, path]


def pull_request(folder: Path, repo: str, base: str, api: str, token: str, remote: str = "") -> str:
    """Open the retraining pull request for the newest harvested batch, if it has enough
    corrections (`harvest.min_corrections`)."""
    path = newest(folder)
    if path is None:
        return f"nothing harvested in {folder}; no pull request"
    provenance = json.loads(path.read_text(encoding="utf-8"))
    harvested = (provenance.get("counts") or {}).get("harvested", 0)
    if not provenance.get("enough") or not provenance.get("raw"):
        least = provenance.get("min_corrections")
        return f"{harvested} corrections harvested (min_corrections {least}); no pull request"
    if not BRANCH.fullmatch(path.stem):
        raise CommentError(f"{path}: the batch name makes no branch name")
    branch = f"retrain/{path.stem}"
    if _ref(repo, branch, api, token):
        return f"branch {branch} exists; nothing to do"
    head = _ref(repo, base, api, token)
    if head is None:
        raise CommentError(f"base branch {base!r} not found in {repo}")
    files = batch_files(provenance, path, remote)
    github(
        "POST", f"{api}/repos/{repo}/git/refs", token, {"ref": f"refs/heads/{branch}", "sha": head}
    )
    for file in files:
        content = base64.b64encode(file.read_bytes()).decode()
        payload = {"message": f"harvest: {file.as_posix()}", "content": content, "branch": branch}
        found = _blob(repo, file, branch, api, token)
        if found:
            payload["sha"] = found
        github("PUT", f"{api}/repos/{repo}/contents/{file.as_posix()}", token, payload)
    title = f"Retrain on {harvested} corrected answers ({path.stem})"
    body = defuse(
        "New training data harvested from users' corrections (make harvest). The model "
        "report on this pull request compares the retrained model with main.\n\n"
        f"```json\n{json.dumps(provenance, indent=2, sort_keys=True)}\n```"
    )
    made, _ = github(
        "POST",
        f"{api}/repos/{repo}/pulls",
        token,
        {"title": title, "head": branch, "base": base, "body": body},
    )
    return f"opened pull request #{made.get('number')} from {branch}"


def _ref(repo: str, branch: str, api: str, token: str) -> str | None:
    """The commit a branch points to, or None when there is no such branch."""
    try:
        ref, _ = github("GET", f"{api}/repos/{repo}/git/ref/heads/{branch}", token)
    except CommentError as err:
        if "HTTP 404" in str(err):
            return None
        raise
    return (ref.get("object") or {}).get("sha")


def _blob(repo: str, path: Path, branch: str, api: str, token: str) -> str | None:
    """The blob sha of `path` on `branch` (to replace it), or None when it is new."""
    try:
        found, _ = github(
            "GET", f"{api}/repos/{repo}/contents/{path.as_posix()}?ref={branch}", token
        )
    except CommentError as err:
        if "HTTP 404" in str(err):
            return None
        raise
    return found.get("sha") if isinstance(found, dict) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("issue", help="open or update the monitoring issue")
    one.add_argument("--figures", type=Path, required=True)
    one.add_argument("--run-url", default="")
    two = sub.add_parser("pull-request", help="open the retraining pull request")
    two.add_argument("--harvest", type=Path, default=Path("data/harvest"), help="provenances")
    two.add_argument("--base", default="main")
    two.add_argument("--dvc-remote", default="", help="where dvc push sends a DVC-tracked batch")
    for each in (one, two):
        each.add_argument("--repo", required=True, help="owner/name")
    args = parser.parse_args(argv)
    api = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    token = os.environ.get("RETRAIN_TOKEN") or os.environ.get("GITHUB_TOKEN", "")
    try:
        if not token:
            raise CommentError("GITHUB_TOKEN is not set")
        if args.command == "issue":
            done = issue(args.figures, args.repo, api, token, args.run_url)
        else:
            done = pull_request(
                args.harvest, args.repo, args.base or "main", api, token, args.dvc_remote
            )
    except (CommentError, OSError, ValueError) as err:
        print(f"retrain {args.command}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"retrain {args.command}: {done}")


if __name__ == "__main__":
    main()
