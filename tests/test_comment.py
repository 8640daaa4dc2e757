"""The commenting workflow's module (llmops.comment): the report is untrusted data. The
pull request it names must be open at the run's head commit (checked against a local
stand-in for the GitHub API), and its Markdown is defused before CML posts it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from llmops.comment import LIMIT, CommentError, defuse, main, pull_request, verify

SHA = "a" * 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping @octocat and @org/team", "ping @\u2060octocat and @\u2060org/team"),
        ("&#64;octocat", "&amp;#64;octocat"),
        ("see #12", "see #\u206012"),
        ("![x](http://evil.example/p.png)", "!\\[x](http://evil.example/p.png)"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ('<a href="http://evil.example">x</a>', '&lt;a href="http://evil.example">x&lt;/a>'),
        ("<details><summary>more</summary>text</details>", "<details><summary>more</summary>text</details>"),
        ("| a | b |\n|---|---|", "| a | b |\n|---|---|"),
        ("AT&T & co; &#", "AT&amp;T & co; &amp;#"),
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
    src = Path(__file__).parents[1] / "src"
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); import llmops.comment\n"
        "print(sorted(m for m in sys.modules if m.startswith('llmops')))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['llmops',", "'llmops.comment',", "'llmops.escape']"]


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


class FakeGitHub(BaseHTTPRequestHandler):
    """Stands in for api.github.com (not reachable here): pull request 7 is open at SHA."""

    def do_GET(self):
        pulls = {"/repos/o/r/pulls/7": {"state": "open", "head": {"sha": SHA}},
                 "/repos/o/r/pulls/8": {"state": "closed", "head": {"sha": SHA}}}  # fmt: skip
        body = pulls.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(json.dumps(body or {"message": "Not Found"}).encode())
        FakeGitHub.auth = self.headers.get("Authorization")

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_pull_request_must_be_open_at_the_runs_head(api):
    verify(7, "o/r", SHA, api, "tok")
    assert FakeGitHub.auth == "Bearer tok"
    for number, sha in ((7, "b" * 40), (8, SHA), (9, SHA)):
        with pytest.raises(CommentError):
            verify(number, "o/r", sha, api, "tok")
    with pytest.raises(CommentError, match="bad repository"):
        verify(7, "o/r; rm -rf /", SHA, api, "tok")


def test_main_posts_the_defused_report_with_cml(tmp_path, api, monkeypatch):
    # CML cannot post here (no GitHub): a fake `cml` first on PATH records its arguments.
    fake = tmp_path / "bin" / "cml"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "argv"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_API_URL", api)
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "pr.json").write_text('{"number": 7}')
    (artifact / "report.md").write_text("# Report\nthanks @octocat ![t](http://x/y.png)\n")
    main(["--artifact", str(artifact), "--head-sha", SHA, "--repo", "o/r"])
    argv = (tmp_path / "argv").read_text().split("\n")
    assert argv[:3] == ["comment", "update", "--target=pr/7"]
    assert "--watermark-title=model-report" in argv
    posted = Path(argv[4]).read_text()
    assert "@\u2060octocat" in posted and "!\\[t]" in posted
    (artifact / "pr.json").write_text('{"number": 8}')  # closed: nothing is posted
    (tmp_path / "argv").unlink()
    with pytest.raises(SystemExit, match="not open"):
        main(["--artifact", str(artifact), "--head-sha", SHA, "--repo", "o/r"])
    assert not (tmp_path / "argv").exists()
