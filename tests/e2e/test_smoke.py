"""The deploy smoke test (llmops.ship.smoke) against the built Bento under the real `bentoml serve`:
every check passes with the right key, a wrong key fails naming the checks, and a URL where
nothing listens fails fast with a one-line reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmops.ship.localserver import free_port
from llmops.ship.smoke import CHECKS, main
from tests.bentos import KEY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def url(served_url) -> str:
    return served_url


def smoke_args(project: Path, url: str, *more: str) -> list[str]:
    data = project / "data" / "prepared" / "test.jsonl"
    return [url, "--params", str(project / "params.yaml"), "--data", str(data), *more]


def results(out: str) -> dict[str, str]:
    """Check name -> result column, from the printed summary table."""
    names = {name for name, _ in CHECKS}
    rows = [line.split() for line in out.splitlines()]
    return {row[0]: row[1] for row in rows if row and row[0] in names}


# The tests' tiny model writes no JSON yet (its eval json_valid is 0.0), so the thresholds on
# answer quality are off here; and this shared 2-core machine is slow, so the budget is wide.
TINY = ("--min-parsed", "0", "--min-label-match", "0", "--budget-ms", "30000")


def version_of(bento) -> str:
    return bento.model.split(":", 1)[1]  # the model store tag's version: what /v1/models says


def test_every_check_passes_with_the_right_key(bento, url, capsys):
    main(smoke_args(bento.project, url, "--api-key", KEY, "--expect-version", version_of(bento),
                    *TINY))  # fmt: skip  # no SystemExit: exit 0
    out = capsys.readouterr().out
    print(out)  # the summary, for -s
    assert results(out) == {name: "ok" for name, _ in CHECKS}, out
    assert KEY not in out


def test_a_wrong_key_fails_naming_the_failing_checks(bento, url, capsys):
    with pytest.raises(SystemExit) as done:
        main(smoke_args(bento.project, url, "--api-key", "not-the-key"))
    assert done.value.code == 1
    captured = capsys.readouterr()
    found = results(captured.out)
    failing = ["golden", "openai", "malformed", "latency"]  # each needs a valid key
    assert [n for n, r in found.items() if r == "FAIL"] == failing, captured.out
    assert found["liveness"] == found["readiness"] == found["auth"] == "ok"
    assert all(name in captured.err for name in failing)
    assert "not-the-key" not in captured.out + captured.err


def test_a_service_serving_another_version_than_the_one_built_fails(bento, url, capsys):
    # What a rollout that has not replaced the old revision yet looks like to the smoke test.
    other = "a" * 16 if version_of(bento) != "a" * 16 else "b" * 16
    with pytest.raises(SystemExit) as done:
        main(smoke_args(bento.project, url, "--api-key", KEY, "--expect-version", other, *TINY))
    assert done.value.code == 1
    captured = capsys.readouterr()
    found = results(captured.out)
    assert found["version"] == "FAIL", captured.out
    assert {found[n] for n in ("golden", "openai", "auth", "malformed", "latency")} == {"skipped"}
    assert "not run: version failed" in captured.out
    assert captured.err.startswith("smoke: FAIL version;"), captured.err
    assert version_of(bento) in captured.err and other in captured.err


def test_without_an_expected_version_the_version_check_says_it_was_skipped(bento, url, capsys):
    main(smoke_args(bento.project, url, "--api-key", KEY, *TINY))
    out = capsys.readouterr().out
    assert results(out)["version"] == "skipped" and "no --expect-version" in out


def test_a_model_that_writes_no_json_or_is_slow_fails_its_checks(bento, url, capsys):
    with pytest.raises(SystemExit) as done:
        main(smoke_args(bento.project, url, "--api-key", KEY, "--budget-ms", "1"))
    assert done.value.code == 1
    captured = capsys.readouterr()
    found = results(captured.out)
    assert [n for n, r in found.items() if r == "FAIL"] == ["golden", "openai", "latency"]
    assert "5 unparsed" in captured.out and "does not parse" in captured.out
    assert captured.err.startswith("smoke: FAIL golden, openai, latency;")


def test_no_service_fails_fast_in_one_line(project, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SystemExit) as done:
        main(smoke_args(project, url, "--ready-timeout", "2"))
    assert done.value.code == 1
    assert time.monotonic() - started < 20
    captured = capsys.readouterr()
    found = results(captured.out)
    assert found["liveness"] == "FAIL"
    assert set(found.values()) == {"FAIL", "skipped"}
    reason = captured.err.strip()
    assert len(reason.splitlines()) == 1 and "liveness" in reason, reason
    assert "Traceback" not in captured.out + captured.err
    assert "never answered" in captured.out  # nothing listens: said so, not "not ready"


def test_a_service_that_answers_but_is_not_ready_is_told_apart(project, capsys):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotReady(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's name for it
            body = b"model still loading"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SystemExit):
            main(smoke_args(project, f"http://127.0.0.1:{server.server_port}",
                            "--ready-timeout", "1"))  # fmt: skip
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "answered 503 but not ready: 'model still loading'" in captured.err, out
