"""Post the pull-request report as one sticky comment, treating it as untrusted data.

Run (the commenting workflow, on the default branch's code, never the pull request's),
with $GITHUB_TOKEN set:
    python -m llmops.report.comment --artifact report-artifact --head-sha SHA --repo owner/name

The report was written by the pull request's own code in a job with no write token, so
nothing in it is trusted: the pull request number it names must be an open pull request
of `--repo` whose head is `--head-sha` (the commit the workflow run tested, from the
event), and the Markdown is defused before posting: HTML other than a few layout tags,
images and entity-encoded characters are escaped, @mentions and #references cannot
notify anyone, and the text is cut to GitHub's comment limit. Links stay text: nothing is
read from disk but the artefact's `report.md` and `pr.json`, and no file is uploaded.

The comment goes through the GitHub REST API ($GITHUB_API_URL, default api.github.com,
with $GITHUB_TOKEN). It starts with MARKER, a hidden HTML comment that the defused report
cannot contain. The pull request's first comment that starts with it and was written by
the token's own identity ($COMMENT_AUTHOR, default `github-actions[bot]`, since
GITHUB_TOKEN cannot ask who it is; set it for a personal or App token) is updated, else a
new one is created: a comment by anyone else is never edited, whatever its text.
Standard library only, so the job needs no install.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

from llmops.report.escape import JOINER  # standard library only, like this module

LIMIT = 65_000  # GitHub's comment limit is 65,536 characters, MARKER included
# Our comment's first line, hidden when rendered. No report text can write it: `defuse`
# escapes every "<" that does not open a layout tag.
MARKER = "<!-- llmops:model-report -->"
AUTHOR = "github-actions[bot]"  # whom GITHUB_TOKEN comments as; $COMMENT_AUTHOR overrides
MAX_PAGES = 30  # pages of 100 comments searched for ours
# The only HTML left as HTML: layout tags the report uses; any other "<" is escaped, and
# so is any "&" that could start an entity (with or without its ";"). Both patterns take
# the backslashes before the character along (see `_literal`).
LAYOUT_TAG = re.compile(r"/?(details|summary|br|sub|sup|b|i|code|pre|p)\s*/?>", re.I)
ANGLE = re.compile(r"(\\*)<")
ENTITY = re.compile(r"(\\*)&(?=[#A-Za-z])")


class CommentError(ValueError):
    """The artefact cannot be posted; the message says why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would send the token on to the new address and turn a
    redirected POST into a GET that looks like success. A 3xx fails like any error."""

    def redirect_request(self, *args: Any) -> None:
        return None


def github(method: str, url: str, token: str, payload: dict | None = None) -> tuple[Any, Message]:
    """The JSON answer and headers of one API request. A failure raises a CommentError
    that names the request and its status, never the token."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
        },
    )
    endpoint = f"{method} {urllib.parse.urlsplit(url).path}"
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return json.load(response), response.headers
    except urllib.error.HTTPError as err:
        raise CommentError(f"{endpoint}: HTTP {err.code} {err.reason}{_why(err)}") from None
    except (OSError, ValueError) as err:  # unreachable, timed out, or not JSON
        raise CommentError(f"{endpoint}: GitHub API error ({err})") from None


def _why(err: urllib.error.HTTPError) -> str:
    """GitHub's own message for a failed request, on one short line, if it sent one."""
    try:
        message = json.loads(err.read(4096))["message"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f" ({' '.join(str(message).split())[:200]})"


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
    data, _ = github("GET", f"{api.rstrip('/')}/repos/{repo}/pulls/{number}", token)
    pr = data if isinstance(data, dict) else {}
    if pr.get("state") != "open" or (pr.get("head") or {}).get("sha") != head_sha:
        raise CommentError(
            f"pull request #{number} is not open at {head_sha[:12]}: the artefact names "
            "another pull request, or the pull request moved on"
        )


def _literal(match: re.Match[str], entity: str) -> str:
    """The matched `&` or `<` as `entity`. llmops.report.escape writes `\\&` and `\\<`, literal in
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
    Text escaped by llmops.report.escape passes through unchanged or, for `\\&` and `\\<`, as
    the entity that shows the same character, never escaped twice.
    """
    text = ENTITY.sub(lambda m: _literal(m, "&amp;"), markdown)  # &#64; would decode to "@"
    text = ANGLE.sub(_angle, text)  # also every "<!--", so no MARKER
    text = text.replace("![", "!\\[")  # no images (they could track readers)
    text = re.sub(r"@(?=[\w-])", "@" + JOINER, text)  # no @mentions: word joiner after @
    # no #123, owner/repo#123 or GH-123 references (each would link this comment there)
    text = re.sub(r"(?<!&amp;)#(?=\d)", "#" + JOINER, text)
    text = re.sub(r"\b(GH)-(?=\d)", lambda m: m.group(1) + JOINER + "-", text, flags=re.I)
    if len(text) > LIMIT:
        text = text[: LIMIT - 200] + "\n\n_(report cut to GitHub's comment limit)_\n"
    return text


def find_report(number: int, repo: str, api: str, token: str, author: str) -> int | None:
    """The id of the pull request's first comment that `author` wrote and that starts with
    MARKER, or None. Follows the Link header's next page, for at most MAX_PAGES pages."""
    api = api.rstrip("/")
    url = f"{api}/repos/{repo}/issues/{number}/comments?per_page=100"
    for _ in range(MAX_PAGES):
        comments, headers = github("GET", url, token)
        for comment in comments if isinstance(comments, list) else ():
            user, body = comment.get("user") or {}, comment.get("body") or ""
            if user.get("login") == author and str(body).startswith(MARKER):
                return int(comment["id"])
        url = _next_page(headers.get("Link", ""), api)
        if not url:
            return None
    raise CommentError(f"pull request #{number}: over {MAX_PAGES * 100} comments, not all read")


def _next_page(link: str, api: str) -> str:
    """The rel="next" address in a Link header, or "" on the last page. The token goes to
    `api` only."""
    match = re.search(r'<([^>]*)>\s*;\s*rel="next"', link)
    if match and not match[1].startswith(f"{api}/"):
        raise CommentError(f"next page {match[1][:100]!r} is not on {api}")
    return match[1] if match else ""


def post(number: int, report: str, repo: str, api: str, token: str, author: str = AUTHOR) -> str:
    """Defuse `report` and update our comment on the pull request with it, or create one.
    Returns "updated" or "posted"."""
    api = api.rstrip("/")
    body = {"body": f"{MARKER}\n{defuse(report)}"}
    found = find_report(number, repo, api, token, author)
    if found is None:
        github("POST", f"{api}/repos/{repo}/issues/{number}/comments", token, body)
        return "posted"
    github("PATCH", f"{api}/repos/{repo}/issues/comments/{found}", token, body)
    return "updated"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, required=True, help="the downloaded artefact")
    parser.add_argument("--head-sha", required=True, help="the workflow run's head commit")
    parser.add_argument("--repo", required=True, help="owner/name")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    token = os.environ.get("GITHUB_TOKEN", "")
    author = os.environ.get("COMMENT_AUTHOR") or AUTHOR
    try:
        if not token:
            raise CommentError("GITHUB_TOKEN is not set")
        number = pull_request(args.artifact)
        verify(number, args.repo, args.head_sha, api, token)
        report = (args.artifact / "report.md").read_text(encoding="utf-8", errors="replace")
        done = post(number, report, args.repo, api, token, author)
    except (CommentError, OSError) as err:
        sys.exit(f"comment: {err}")
    print(f"comment: report {done} on pull request #{number}")


if __name__ == "__main__":
    main()
