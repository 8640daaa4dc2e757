"""The commenting workflow's module (llmops.report.comment): the report is untrusted data. The
pull request it names must be open at the run's head commit, its Markdown is defused, no
file it names is read or sent, and only our own marked comment is ever edited. The GitHub
API is a real HTTP server on 127.0.0.1 (FakeGitHub) that records every request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from llmops.report.comment import (
    AUTHOR,
    LIMIT,
    MARKER,
    CommentError,
    defuse,
    main,
    pull_request,
    verify,
)

SHA = "a" * 40
TOKEN = "ghs_test-token-never-printed"
PULLS = {"/repos/o/r/pulls/7": {"state": "open", "head": {"sha": SHA}},
         "/repos/o/r/pulls/8": {"state": "closed", "head": {"sha": SHA}}}  # fmt: skip
CML_WATERMARK = '![](https://cml.dev/watermark.png#0123abcd "CML watermark model-report")'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping @octocat and @org/team", "ping @\u2060octocat and @\u2060org/team"),
        ("&#64;octocat", "&amp;#64;octocat"),
        ("see #12", "see #\u206012"),
        ("fixes owner/repo#12 and x#3", "fixes owner/repo#\u206012 and x#\u20603"),
        ("see GH-12 and gh-3", "see GH\u2060-12 and gh\u2060-3"),
        ("![x](http://evil.example/p.png)", "!\\[x](http://evil.example/p.png)"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ('<a href="http://evil.example">x</a>', '&lt;a href="http://evil.example">x&lt;/a>'),
        ("<details><summary>more</summary>text</details>", "<details><summary>more</summary>text</details>"),
        ("| a | b |\n|---|---|", "| a | b |\n|---|---|"),
        ("AT&T & co; &#", "AT&amp;T & co; &amp;#"),
        ("<!-- llmops:model-report -->", "&lt;!-- llmops:model-report -->"),  # no MARKER
    ],
)  # fmt: skip
def test_markdown_is_defused_outside_code(text, expected):
    assert defuse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\\|b \\` \\* \\@\u2060x #\u20601", "a\\|b \\` \\* \\@\u2060x #\u20601"),  # as is
        ("\\&#124;", "&amp;#124;"),  # "\\&" shows "&" in Markdown; "&amp;" also in HTML blocks
        ("\\<img src=x> \\<details>", "&lt;img src=x> &lt;details>"),
        ("\\\\&#64;x \\\\<b>", "\\\\&amp;#64;x \\\\<b>"),  # "\\\\" escapes a backslash, not "&"
        ("\\\\\\&#64;x", "\\\\&amp;#64;x"),
        ("<details>\n\\&#64;octocat \\<img src=x>\n</details>",
         "<details>\n&amp;#64;octocat &lt;img src=x>\n</details>"),  # raw HTML: no escapes there
    ],
)  # fmt: skip
def test_text_escaped_by_llmops_escape_is_not_escaped_twice(text, expected):
    assert defuse(text) == expected


def test_the_module_needs_only_the_standard_library():
    # The commenting workflow runs it with a bare python3 and PYTHONPATH=src, no install:
    # here with no site-packages at all (-S), so any other import fails.
    src = Path(__file__).parents[3] / "src"
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); import llmops.report.comment\n"
        "print(sorted(m for m in sys.modules if m.startswith('llmops')))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "['llmops',",
        "'llmops.report',",
        "'llmops.report.comment',",
        "'llmops.report.escape']",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "```x```\n@everyone ![t](https://e.x/p.png) <img src=x>",  # inline code, not a fence
        "```\n  ```\n@everyone ![t](https://e.x/p.png) <img src=x>",  # indented closing fence
        "~~~\n```\n~~~\n@everyone ![t](https://e.x/p.png) <img src=x>",  # mixed fences
    ],
)
def test_a_faked_code_fence_shields_nothing(text):
    out = defuse(text)
    assert "@everyone" not in out and "![" not in out and "<img" not in out


def test_charts_in_code_blocks_survive():
    text = "```mermaid\nxychart-beta\n  bar [0.5, 0.7]\n```"
    assert defuse(text) == text


def test_a_report_over_the_limit_is_cut_and_says_so():
    out = defuse("x" * (LIMIT + 10))
    assert len(out) <= LIMIT and out.endswith("_(report cut to GitHub's comment limit)_\n")


@pytest.mark.parametrize("content", ['{"number": "12"}', '{"number": -1}', '{"number": true}',
                                     '{"n": 1}', "not json"])  # fmt: skip
def test_the_pull_request_number_must_be_a_positive_integer(tmp_path, content):
    (tmp_path / "pr.json").write_text(content)
    with pytest.raises(CommentError, match=r"pr\.json"):
        pull_request(tmp_path)


class Request(NamedTuple):
    method: str
    path: str  # with the query
    headers: dict[str, str]  # names in lower case
    body: str

    def text(self) -> str:
        """Everything the client sent."""
        return f"{self.method} {self.path}\n{self.headers}\n{self.body}"


class FakeGitHub(ThreadingHTTPServer):
    """Stands in for api.github.com (not reachable here) on a free port of 127.0.0.1.

    Pull request 7 of o/r is open at SHA and 8 is closed. The issue comments of 7 come
    PAGE at a time with a Link header to the next page (its address starts with
    `link_base`), POST adds one as `login`, PATCH edits one. `fail` maps (method, path)
    to an error status. Every request is kept in `requests`."""

    PAGE = 2  # GitHub gives at most 100 a page; 2 makes several pages from a few comments
    COMMENTS = "/repos/o/r/issues/7/comments"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeGitHubHandler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.link_base = self.url
        self.login = AUTHOR
        self.comments: list[dict] = []
        self.requests: list[Request] = []
        self.fail: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def add(self, login: str, body: str) -> dict:
        """A comment by `login`, as GitHub stores it."""
        comment = {"id": 1000 + len(self.comments), "user": {"login": login}, "body": body}
        self.comments.append(comment)
        return comment

    def calls(self) -> list[tuple[str, str]]:
        """(method, path without the query) of each request, in order."""
        return [(r.method, urlsplit(r.path).path) for r in self.requests]

    def answer(self, method: str, path: str, body: str) -> tuple[int, object, dict[str, str]]:
        """Status, JSON answer and headers for one request."""
        url = urlsplit(path)
        if (method, url.path) in self.fail:
            status = self.fail[method, url.path]
            moved = {"Location": f"{self.url}/elsewhere"} if 300 <= status < 400 else {}
            return status, {"message": "Resource not accessible by integration"}, moved
        if method == "GET" and url.path in PULLS:
            return 200, PULLS[url.path], {}
        if method == "GET" and url.path == self.COMMENTS:
            return self.page(parse_qs(url.query))
        if method == "POST" and url.path == self.COMMENTS:
            return 201, self.add(self.login, json.loads(body)["body"]), {}
        edit = re.fullmatch(r"/repos/o/r/issues/comments/(\d+)", url.path)
        found = [c for c in self.comments if edit and c["id"] == int(edit[1])]
        if method == "PATCH" and found:
            found[0]["body"] = json.loads(body)["body"]
            return 200, found[0], {}
        return 404, {"message": "Not Found"}, {}

    def page(self, query: dict[str, list[str]]) -> tuple[int, object, dict[str, str]]:
        per_page, page = int(query["per_page"][0]), int(query.get("page", ["1"])[0])
        size = min(per_page, self.PAGE)
        link = f"{self.link_base}{self.COMMENTS}?per_page={per_page}&page={page + 1}"
        more = {"Link": f'<{link}>; rel="next"'} if page * size < len(self.comments) else {}
        return 200, self.comments[(page - 1) * size : page * size], more


class FakeGitHubHandler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.requests.append(Request(self.command, self.path, headers, body))
            status, data, extra = self.server.answer(self.command, self.path, body)
        payload = json.dumps(data).encode()
        self.send_response(status)
        for name, value in {**extra, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.do_GET()

    def do_PATCH(self) -> None:
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github(monkeypatch):
    fake = FakeGitHub()
    thread = threading.Thread(target=fake.serve_forever)
    thread.start()
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("COMMENT_AUTHOR", raising=False)
    yield fake
    fake.shutdown()
    fake.server_close()
    thread.join()


def artefact(tmp_path: Path, report: str, number: int = 7) -> list[str]:
    """The downloaded artefact (report.md, pr.json) and main's arguments for it."""
    folder = tmp_path / "artifact"
    folder.mkdir(exist_ok=True)
    (folder / "pr.json").write_text(json.dumps({"number": number}))
    (folder / "report.md").write_text(report)
    return ["--artifact", str(folder), "--head-sha", SHA, "--repo", "o/r"]


class Audit:
    """The files this thread opens and the programs it starts inside `with`. An audit hook
    cannot be removed (sys.addaudithook), so one hook, added once, records only while an
    Audit is active. Programs count because a program (CML) could read any file."""

    active: Audit | None = None
    hooked = False
    STARTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.started: list[str] = []
        self.thread = threading.get_ident()  # not the fake server's threads

    def __enter__(self) -> Audit:
        if not Audit.hooked:
            sys.addaudithook(Audit.hook)
            Audit.hooked = True
        Audit.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        Audit.active = None

    @staticmethod
    def hook(event: str, args: tuple) -> None:
        audit = Audit.active
        if not audit or threading.get_ident() != audit.thread:
            return
        if event == "open" and isinstance(args[0], str | bytes):  # not a file descriptor
            audit.opened.append(os.fsdecode(args[0]))
        elif event in Audit.STARTS:
            audit.started.append(event)


def test_the_pull_request_must_be_open_at_the_runs_head(github):
    verify(7, "o/r", SHA, github.url, "tok")
    assert github.requests[0].headers["authorization"] == "Bearer tok"
    for number, sha in ((7, "b" * 40), (8, SHA), (9, SHA)):
        with pytest.raises(CommentError):
            verify(number, "o/r", sha, github.url, "tok")
    with pytest.raises(CommentError, match="bad repository"):
        verify(7, "o/r; rm -rf /", SHA, github.url, "tok")


def test_files_the_report_names_are_neither_read_nor_sent(tmp_path, github, monkeypatch):
    # CML uploaded every local file a link or image named; here each named file exists.
    secret = "SENTINEL-5f0c2b9e-never-leaves-the-runner"
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    absolute = elsewhere / "secret.txt"
    links = (f"[x]({absolute})\n[y](secret.txt)\n![z](../secret.txt)\n![w](secret.txt)\n"
             f'<img src="secret.txt"> <img src="{absolute}">\n[see][a] and [that][b]\n\n'
             f"[a]: {absolute}\n[b]: secret.txt\n[f](file://{absolute})\n")  # fmt: skip
    argv = artefact(tmp_path, f"# Report\n{links}")
    for folder in (work, elsewhere, tmp_path, tmp_path / "artifact"):
        folder.mkdir(exist_ok=True)
        (folder / "secret.txt").write_text(secret)
    monkeypatch.chdir(work)
    with Audit() as audit:
        main(argv)
    artifact = tmp_path / "artifact"
    assert sorted(audit.opened) == [str(artifact / "pr.json"), str(artifact / "report.md")]
    assert audit.started == []
    assert github.requests and not [r for r in github.requests if secret in r.text()]
    posted = github.comments[0]["body"]
    assert f"[x]({absolute})" in posted and f"[a]: {absolute}" in posted  # links as text
    assert "![" not in posted and "<img" not in posted


def test_the_first_run_posts_the_comment_and_the_next_updates_it(tmp_path, github, capsys):
    argv = artefact(tmp_path, "# Report 1\n")
    main(argv)
    assert [c["body"] for c in github.comments] == [f"{MARKER}\n# Report 1\n"]
    (tmp_path / "artifact" / "report.md").write_text("# Report 2\n")
    main(argv)
    assert [c["body"] for c in github.comments] == [f"{MARKER}\n# Report 2\n"]
    comment = f"/repos/o/r/issues/comments/{github.comments[0]['id']}"
    assert github.calls() == [
        ("GET", "/repos/o/r/pulls/7"), ("GET", github.COMMENTS), ("POST", github.COMMENTS),
        ("GET", "/repos/o/r/pulls/7"), ("GET", github.COMMENTS), ("PATCH", comment),
    ]  # fmt: skip
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in github.requests)
    assert "per_page=100" in github.requests[1].path
    out = capsys.readouterr().out
    assert "report posted on pull request #7" in out and "report updated on" in out


def test_only_our_own_marked_comment_is_ever_edited(tmp_path, github):
    foreign = [
        github.add("mallory", f"{MARKER}\nmy report, please keep it"),  # the marker, not ours
        github.add("mallory", f"{CML_WATERMARK}\nCML's watermark"),
        github.add(AUTHOR, f"{CML_WATERMARK}\nthe report CML posted"),  # not our marker
    ]
    ours = github.add(AUTHOR, f"{MARKER}\nlast report")  # on page 2
    foreign.append(github.add("mallory", f"{MARKER}\nlater"))
    before = [dict(c) for c in foreign]
    main(artefact(tmp_path, "# Report\n"))
    assert ours["body"] == f"{MARKER}\n# Report\n"
    assert foreign == before and len(github.comments) == 5
    assert github.calls()[-1] == ("PATCH", f"/repos/o/r/issues/comments/{ours['id']}")
    pages = [r.path for r in github.requests if r.path.startswith(github.COMMENTS)]
    assert len(pages) == 2 and "page=2" in pages[1]


def test_a_comment_author_names_another_identity(tmp_path, github, monkeypatch):
    monkeypatch.setenv("COMMENT_AUTHOR", "report-app[bot]")
    github.login = "report-app[bot]"
    actions = github.add(AUTHOR, f"{MARKER}\nposted with GITHUB_TOKEN")
    argv = artefact(tmp_path, "# Report\n")
    main(argv)
    main(argv)
    assert actions["body"] == f"{MARKER}\nposted with GITHUB_TOKEN"
    assert [c["user"]["login"] for c in github.comments] == [AUTHOR, "report-app[bot]"]
    assert [m for m, _ in github.calls()].count("PATCH") == 1


@pytest.mark.parametrize(
    "forged",
    [MARKER, "\\" + MARKER, "\\\\" + MARKER, "<!--llmops:model-report-->",
     MARKER.replace("<", "&lt;"), MARKER.replace("<", "&#60;"), f"<details>{MARKER}</details>"],
)  # fmt: skip
def test_the_report_cannot_write_the_marker(tmp_path, github, forged):
    mallory = github.add("mallory", f"{MARKER}\n{forged}\n# Report\n")  # if it leaked through
    quoted = github.add(AUTHOR, f"another workflow quoting {MARKER}")  # ours only at the start
    main(artefact(tmp_path, f"{forged}\n# Report\n"))
    assert mallory["body"] == f"{MARKER}\n{forged}\n# Report\n"
    assert quoted["body"] == f"another workflow quoting {MARKER}"
    assert [m for m, _ in github.calls()] == ["GET", "GET", "POST"]
    posted = github.comments[-1]["body"]
    assert posted.startswith(f"{MARKER}\n") and posted.count("<!--") == 1


@pytest.mark.parametrize(
    ("number", "fail", "expected"),
    [
        (9, None, "GET /repos/o/r/pulls/9: HTTP 404 Not Found"),
        (7, ("GET", "/repos/o/r/pulls/7", 404), "GET /repos/o/r/pulls/7: HTTP 404"),
        (7, ("GET", FakeGitHub.COMMENTS, 500), f"GET {FakeGitHub.COMMENTS}: HTTP 500"),
        (7, ("POST", FakeGitHub.COMMENTS, 403), f"POST {FakeGitHub.COMMENTS}: HTTP 403 Forbidden "
                                                "(Resource not accessible by integration)"),
        (7, ("POST", FakeGitHub.COMMENTS, 301), f"POST {FakeGitHub.COMMENTS}: HTTP 301"),
        (8, None, "pull request #8 is not open"),
    ],
)  # fmt: skip
def test_api_failures_exit_naming_the_request_and_status(
    tmp_path, github, capsys, number, fail, expected
):
    if fail:
        github.fail[fail[:2]] = fail[2]
    with pytest.raises(SystemExit) as exited:
        main(artefact(tmp_path, "# Report\n", number))
    message = str(exited.value.code)
    assert message.startswith("comment: ") and expected in message and "\n" not in message
    printed = capsys.readouterr()
    assert TOKEN not in message + printed.out + printed.err
    assert github.comments == []
    assert "/elsewhere" not in [r.path for r in github.requests]  # a redirect is not followed


def test_no_token_and_a_next_page_elsewhere_are_refused(tmp_path, github, monkeypatch):
    argv = artefact(tmp_path, "# Report\n")
    monkeypatch.setenv("GITHUB_TOKEN", "")
    with pytest.raises(SystemExit, match="GITHUB_TOKEN is not set"):
        main(argv)
    assert github.requests == []
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.link_base = "http://evil.example"  # the token goes to GITHUB_API_URL only
    for _ in range(3):
        github.add("mallory", "hi")
    with pytest.raises(
        SystemExit, match=r"next page 'http://evil\.example/.*' is not on http://127"
    ):
        main(argv)
    assert [m for m, _ in github.calls()] == ["GET", "GET"]
