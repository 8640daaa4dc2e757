"""Post the pull-request report as one sticky comment, treating it as untrusted data.

Run (the commenting workflow, on the default branch's code, never the pull request's):
    python -m llmops.comment --artifact report-artifact --head-sha SHA --repo owner/name

The report was written by the pull request's own code in a job with no write token, so
nothing in it is trusted: the pull request number it names must be an open pull request
of `--repo` whose head is `--head-sha` (the commit the workflow run tested, from the
event, checked through the GitHub API with $GITHUB_TOKEN), and the Markdown is defused
before posting: HTML other than a few layout tags, images and entity-encoded characters
are escaped, @mentions and #references cannot notify anyone, and the text is cut to
GitHub's comment limit. Then `cml comment update` posts or updates the one comment.
Standard library only, so the job needs no install beyond CML.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from llmops.escape import JOINER  # standard library only, like this module

LIMIT = 65_000  # GitHub's comment limit is 65,536 characters
WATERMARK = "model-report"
# The only HTML left as HTML: layout tags the report uses; any other "<" is escaped, and
# so is any "&" that could start an entity (with or without its ";"). Both patterns take
# the backslashes before the character along (see `_literal`).
LAYOUT_TAG = re.compile(r"/?(details|summary|br|sub|sup|b|i|code|pre|p)\s*/?>", re.I)
ANGLE = re.compile(r"(\\*)<")
ENTITY = re.compile(r"(\\*)&(?=[#A-Za-z])")


class CommentError(ValueError):
    """The artefact cannot be posted; the message says why."""


def pull_request(artifact: Path) -> int:
    """The pull request number the artefact names (pr.json: {"number": N})."""
    try:
        number = json.loads((artifact / "pr.json").read_text(encoding="utf-8"))["number"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CommentError(f"{artifact / 'pr.json'}: no pull request number ({err})") from None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise CommentError(f"{artifact / 'pr.json'}: number {number!r} is not a positive integer")
    return number


def verify(number: int, repo: str, head_sha: str, api: str, token: str) -> None:
    """Fail unless pull request `number` of `repo` is open with head `head_sha`."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo) or not re.fullmatch(r"[0-9a-f]{40}", head_sha):
        raise CommentError(f"bad repository {repo!r} or head sha {head_sha!r}")
    request = urllib.request.Request(
        f"{api.rstrip('/')}/repos/{repo}/pulls/{number}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
    except OSError as err:
        raise CommentError(f"pull request #{number}: GitHub API error ({err})") from None
    if data.get("state") != "open" or data.get("head", {}).get("sha") != head_sha:
        raise CommentError(
            f"pull request #{number} is not open at {head_sha[:12]}: the artefact names "
            "another pull request, or the pull request moved on"
        )


def _literal(match: re.Match[str], entity: str) -> str:
    """The matched `&` or `<` as `entity`. llmops.escape writes `\\&` and `\\<`, literal in
    Markdown but not inside an HTML block, where a backslash is plain text: the entity reads
    the same in both places, so the escaping backslash goes (an even run of backslashes
    escapes only itself and stays)."""
    return match[1][: len(match[1]) // 2 * 2] + entity


def _angle(match: re.Match[str]) -> str:
    """`<` as `&lt;`, unless it opens a layout tag and no backslash escapes it."""
    layout = len(match[1]) % 2 == 0 and LAYOUT_TAG.match(match.string, match.end())
    return match[0] if layout else _literal(match, "&lt;")


def defuse(markdown: str) -> str:
    """The report with anything that could act on readers or GitHub neutralised.

    Code blocks get the same treatment as the text around them: whether a line opens or
    closes a fence is easy to fake (inline code, indented or mixed fences), and inside a
    real fence the changes are harmless (an invisible word joiner, an escaped `<`).
    Text escaped by llmops.escape passes through unchanged or, for `\\&` and `\\<`, as
    the entity that shows the same character, never escaped twice.
    """
    text = ENTITY.sub(lambda m: _literal(m, "&amp;"), markdown)  # &#64; would decode to "@"
    text = ANGLE.sub(_angle, text)
    text = text.replace("![", "!\\[")  # no images (they could track readers)
    text = re.sub(r"@(?=[\w-])", "@" + JOINER, text)  # no @mentions: word joiner after @
    text = re.sub(r"(?<!&amp;)(?<![\w])#(?=\d)", "#" + JOINER, text)  # no #123 references
    if len(text) > LIMIT:
        text = text[: LIMIT - 200] + "\n\n_(report cut to GitHub's comment limit)_\n"
    return text


def post(number: int, report: Path, cml: str = "cml") -> None:
    """Create or update the one report comment on the pull request."""
    command = [cml, "comment", "update", f"--target=pr/{number}",
               f"--watermark-title={WATERMARK}", str(report)]  # fmt: skip
    subprocess.run(command, check=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, required=True, help="the downloaded artefact")
    parser.add_argument("--head-sha", required=True, help="the workflow run's head commit")
    parser.add_argument("--repo", required=True, help="owner/name")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        number = pull_request(args.artifact)
        api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
        verify(number, args.repo, args.head_sha, api, os.environ.get("GITHUB_TOKEN", ""))
        report = (args.artifact / "report.md").read_text(encoding="utf-8", errors="replace")
    except (CommentError, OSError) as err:
        sys.exit(f"comment: {err}")
    safe = args.artifact / "report.safe.md"
    safe.write_text(defuse(report), encoding="utf-8")
    post(number, safe)
    print(f"comment: report posted on pull request #{number}")


if __name__ == "__main__":
    main()
