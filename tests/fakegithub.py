"""A small GitHub REST API on loopback for the monitor workflow's tests: issues, comments,
branches (git refs), file contents and pull requests, kept in memory, every call recorded.
GitHub itself cannot be reached here; the client under test is the real one
(llmops.report.comment.github, urllib), so only the server is a stand-in."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from llmops.ship.localserver import free_port


class FakeGitHub(ThreadingHTTPServer):
    """State of one repository; `url` is its API root."""

    def __init__(self, repo: str = "owner/name", token: str = "t0ken") -> None:
        super().__init__(("127.0.0.1", free_port()), Handler)
        self.repo, self.token = repo, token
        self.issues: dict[int, dict] = {}
        self.comments: list[tuple[int, str]] = []
        self.refs: dict[str, str] = {"main": "c0ffee"}
        self.files: dict[tuple[str, str], bytes] = {}
        self.pulls: list[dict] = []
        self.calls: list[tuple[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, method: str, path: str, body: dict) -> tuple[int, object]:
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)
        prefix = f"/repos/{self.repo}"
        if not url.path.startswith(prefix):
            return 404, {"message": "Not Found"}
        route = url.path.removeprefix(prefix)
        if method == "GET" and route == "/issues":
            label = (query.get("labels") or [""])[0]
            return 200, [
                i for i in self.issues.values() if i["state"] == "open" and label in i["labels"]
            ]
        if method == "POST" and route == "/issues":
            number = len(self.issues) + len(self.pulls) + 1
            self.issues[number] = {"number": number, "state": "open", "title": body["title"],
                                   "body": body["body"], "labels": body.get("labels", [])}  # fmt: skip
            return 201, self.issues[number]
        if route.startswith("/issues/") and route.endswith("/comments") and method == "POST":
            self.comments.append((int(route.split("/")[2]), body["body"]))
            return 201, {"id": len(self.comments)}
        if route.startswith("/issues/") and method == "PATCH":
            self.issues[int(route.split("/")[2])].update(body)
            return 200, self.issues[int(route.split("/")[2])]
        if route.startswith("/git/ref/heads/") and method == "GET":
            branch = route.removeprefix("/git/ref/heads/")
            if branch not in self.refs:
                return 404, {"message": "Not Found"}
            return 200, {"object": {"sha": self.refs[branch]}}
        if route == "/git/refs" and method == "POST":
            self.refs[body["ref"].removeprefix("refs/heads/")] = body["sha"]
            return 201, {"ref": body["ref"]}
        if route.startswith("/contents/"):
            name = route.removeprefix("/contents/")
            if method == "GET":
                branch = (query.get("ref") or ["main"])[0]
                if (branch, name) not in self.files:
                    return 404, {"message": "Not Found"}
                return 200, {"sha": f"blob-{name}"}
            self.files[body["branch"], name] = base64.b64decode(body["content"])
            return 201, {"content": {"path": name}}
        if route == "/pulls" and method == "POST":
            number = len(self.issues) + len(self.pulls) + 1
            self.pulls.append({"number": number, **body})
            return 201, {"number": number}
        return 404, {"message": f"no route {method} {route}"}


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        self.server.calls.append((self.command, self.path.split("?")[0]))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            status, answer = 401, {"message": "Bad credentials"}
        else:
            status, answer = self.server.answer(self.command, self.path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = _reply  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass
