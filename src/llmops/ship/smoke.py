"""Smoke-test a freshly started service before it takes traffic (what a deploy job runs).

Run: python -m llmops.ship.smoke http://127.0.0.1:3000 --params params.yaml \
         --data data/prepared/test.jsonl [--api-key KEY] [--expect-version V] [--golden 5] \
         [--budget-ms 2000]

Checks, in order (none after a failed liveness, readiness or version): liveness and
readiness (GET /livez and /readyz answer 200 within --ready-timeout s); version (GET
/v1/models names --expect-version, the model version the deployed Bento was built with: a
rollout still serving the old revision fails here; skipped when none is given); golden (the
first --golden test rows in one POST /v1/answer: at least --min-parsed of the answers
parse, default all, and at least --min-label-match of their label values equal the rows');
openai (the official client lists `serve.name`, answers the first golden row with token
counts and, unless --min-parsed is 0, content that parses into the output fields, and
streams the same content); auth (a wrong API key gets 401 with OpenAI's error body; skipped
with no key); malformed (an empty input gets 422 naming an input field); latency (the
median client-side wall time, network + queue + generation, of --latency-requests
single-input POST /v1/answer calls is at most --budget-ms). --min-label-match defaults to
0.4: well above chance for a task with several labels per field, and well under what a
gated model gets on a handful of rows (a 0.66 model fails 0.6 on 1 choice of 5 rows in 4):
this catches a wrong or broken model; eval measures quality.

Prints a table (check, result, detail, ms); exits 1 with a one-line reason on stderr if a
check failed; `run_smoke(argv)` returns the same as a value (llmops.ship.deploy calls it). The
key is --api-key, else the environment variable `serve.api_key_env` (so it need not be on a
command line); it is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import openai

from llmops.config.params import ParamsError, load_params
from llmops.config.task import Task
from llmops.model.tokenised import DataError, check_rows, read_split

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"
GATES = ("liveness", "readiness", "version")  # the others need a ready service, the right model
ERROR_KEYS = {"message", "type", "param", "code"}  # OpenAI's error body
MAX_DETAIL = 90  # characters of a detail in the table, to keep it one screen wide


class CheckError(Exception):
    """What a check found wrong."""


class SkipError(Exception):
    """Why a check was not run."""


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # OK, FAIL or SKIPPED
    detail: str
    ms: float


@dataclass
class Smoke:
    """What the checks need: the service and its key, the task, the golden rows, the knobs."""

    url: str
    key: str
    task: Task
    model: str  # the served model's id (serve.name)
    rows: list[dict]
    http: httpx.Client
    client: openai.OpenAI  # the official client, at {url}/v1
    min_parsed: float = 1.0
    min_label_match: float = 0.4
    budget_ms: float = 2000.0
    latency_requests: int = 5
    ready_timeout: float = 60.0
    expect_version: str = ""  # the model version the service must serve ("": not checked)
    started: float = field(default_factory=time.monotonic)

    def inputs(self, row: dict) -> dict[str, str]:
        return {f.name: row[f.name] for f in self.task.inputs}

    def user_content(self, row: dict) -> str:
        """The chat message for a row, as `ChatRequest.task_input` reads it back."""
        if len(self.task.inputs) == 1 and not self.task.inputs[0].is_label:
            return row[self.task.inputs[0].name]
        return json.dumps(self.inputs(row), ensure_ascii=False)


def _error(r: httpx.Response) -> dict:
    """OpenAI's error body of `r`; fails the check if it has none."""
    try:
        error = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = None
    if not isinstance(error, dict) or not error.keys() >= ERROR_KEYS:
        raise CheckError(f"{r.status_code} without OpenAI's error body: {r.text}")
    return error


def _expect(r: httpx.Response, status: int) -> httpx.Response:
    if r.status_code != status:
        where = f"{r.request.method} {r.request.url.path}: {r.status_code}, not {status}"
        raise CheckError(f"{where}: {_error(r)['message']}")
    return r


def _poll(s: Smoke, path: str) -> str:
    """Wait for `path` to answer 200; on timeout say which it was: the server answered, not
    ready (and how), or never answered (and why)."""
    last = ""
    while True:
        try:
            r = s.http.get(path, timeout=2)
            if r.status_code == 200:
                return f"GET {path} 200 after {time.monotonic() - s.started:.1f} s"
            last = f"answered {r.status_code} but not ready: {r.text[:200]!r}"
        except httpx.HTTPError as err:
            last = last or f"never answered ({type(err).__name__}: {err})"
        if time.monotonic() - s.started >= s.ready_timeout:
            raise CheckError(f"GET {path}: {last} (waited {s.ready_timeout:g} s)")
        time.sleep(0.5)


def version(s: Smoke) -> str:
    """The served model's version (GET /v1/models, `version` of `serve.name`) is the one
    expected: the Bento just built, not the revision a rollout has not replaced yet."""
    if not s.expect_version:
        raise SkipError("skipped (no --expect-version): the served version is not checked")
    data = _expect(s.http.get("/v1/models"), 200).json().get("data") or []
    served = [str(m.get("version")) for m in data if isinstance(m, dict) and m.get("id") == s.model]
    if served != [s.expect_version]:
        raise CheckError(
            f"{s.model} serves model version {', '.join(served) or 'none'}, "
            f"expected {s.expect_version} (the one built)"
        )
    return f"{s.model} version {s.expect_version}"


def golden(s: Smoke) -> str:
    body = {"inputs": [s.inputs(row) for row in s.rows]}
    answers = _expect(s.http.post("/v1/answer", json=body), 200).json()["answers"]
    unparsed = [i for i, a in enumerate(answers) if not a["parsed"]]
    pairs = [
        (a["output"].get(f.name), row[f.name])
        for a, row in zip(answers, s.rows, strict=True)
        for f in s.task.labels
    ]
    matched = sum(got == want for got, want in pairs)
    detail = f"{len(answers)} rows: {len(unparsed)} unparsed, {matched}/{len(pairs)} labels match"
    if len(unparsed) > (1 - s.min_parsed) * len(answers):
        raise CheckError(f"{detail}; rows {unparsed} did not parse")
    if matched < s.min_label_match * len(pairs):
        raise CheckError(f"{detail}, under {s.min_label_match:.0%}")
    return detail


def openai_path(s: Smoke) -> str:
    client = s.client
    ids = [m.id for m in client.models.list()]
    if s.model not in ids:
        raise CheckError(f"models.list() gives {ids}, not {s.model!r}")
    messages = [{"role": "user", "content": s.user_content(s.rows[0])}]
    completion = client.chat.completions.create(model=s.model, messages=messages)
    text = completion.choices[0].message.content or ""
    parsed = s.task.parse_answer(text)
    if not parsed.valid and s.min_parsed > 0:
        raise CheckError(f"content does not parse ({parsed.error}): {text}")
    usage = completion.usage
    if usage is None or usage.prompt_tokens <= 0 or usage.completion_tokens <= 0:
        raise CheckError(f"usage without token counts: {usage}")
    stream = client.chat.completions.create(model=s.model, messages=messages, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    if streamed != text:
        raise CheckError(f"streamed {streamed!r} differs from {text!r}")
    tokens = f"{usage.prompt_tokens}+{usage.completion_tokens} tokens"
    return f"{s.model}: {'parsed' if parsed.valid else 'unparsed'}, {tokens}, stream same"


def auth(s: Smoke) -> str:
    if not s.key:
        raise SkipError("skipped (no key): wrong-key rejection not checked")
    wrong = {"Authorization": f"Bearer {secrets.token_hex(16)}"}
    r = s.http.post("/v1/answer", json={"input": s.inputs(s.rows[0])}, headers=wrong)
    error = _error(_expect(r, 401))
    return f"wrong key: 401 {error['type']} ({error['code']})"


def malformed(s: Smoke) -> str:
    error = _error(_expect(s.http.post("/v1/answer", json={"input": {}}), 422))
    names = [f.name for f in s.task.inputs]
    param = str(error["param"] or "")
    if not set(param.split(".")) & set(names):
        raise CheckError(f"422 names param {param!r}, none of the input fields {names}")
    return f'{{"input": {{}}}}: 422, param {param!r}'


def latency(s: Smoke) -> str:
    times = []
    for i in range(s.latency_requests):
        body = {"input": s.inputs(s.rows[i % len(s.rows)])}
        start = time.perf_counter()
        _expect(s.http.post("/v1/answer", json=body), 200)
        times.append(1000 * (time.perf_counter() - start))
    p50 = statistics.median(times)
    detail = (
        f"p50 {p50:.0f} ms (max {max(times):.0f}) of {len(times)} single-input "
        f"/v1/answer; budget {s.budget_ms:g} ms"
    )
    if p50 > s.budget_ms:
        raise CheckError(detail)
    return detail


CHECKS: tuple[tuple[str, Callable[[Smoke], str]], ...] = (
    ("liveness", partial(_poll, path="/livez")),
    ("readiness", partial(_poll, path="/readyz")),
    ("version", version),
    ("golden", golden),
    ("openai", openai_path),
    ("auth", auth),
    ("malformed", malformed),
    ("latency", latency),
)


def run_check(name: str, check: Callable[[Smoke], str], s: Smoke) -> Check:
    """Run one check; any error is its failure, in one line, so the table always completes."""
    start = time.perf_counter()
    try:
        result, detail = OK, check(s)
    except SkipError as why:
        result, detail = SKIPPED, str(why)
    except CheckError as err:
        result, detail = FAIL, str(err)
    except Exception as err:  # connection refused, a timeout, an unexpected body
        result, detail = FAIL, f"{type(err).__name__}: {err}"
    if len(s.key) >= 8:  # never echoed by the service; a short key would mask plain words
        detail = detail.replace(s.key, "***")
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 3] + "..."
    return Check(name, result, detail, 1000 * (time.perf_counter() - start))


def run_checks(s: Smoke) -> list[Check]:
    """Every check in order; none after a failed liveness, readiness or version check."""
    done: list[Check] = []
    for name, check in CHECKS:
        down = next((c.name for c in done if c.name in GATES and c.result == FAIL), "")
        done.append(
            Check(name, SKIPPED, f"not run: {down} failed", 0.0)
            if down
            else run_check(name, check, s)
        )
    return done


def table(checks: list[Check]) -> str:
    """The summary: one aligned line per check."""
    rows = [("check", "result", "detail", "ms")]
    rows += [(c.name, c.result, c.detail, f"{c.ms:.0f}") for c in checks]
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        f"{a:<{width[0]}}  {b:<{width[1]}}  {c:<{width[2]}}  {d:>{width[3]}}" for a, b, c, d in rows
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the service's root, e.g. http://127.0.0.1:3000")
    parser.add_argument("--api-key", help="default: the environment variable serve.api_key_env")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="the test split (JSONL)")
    parser.add_argument("--golden", type=int, default=5, help="rows sent as golden requests")
    parser.add_argument(
        "--min-parsed",
        type=float,
        default=1.0,
        help="least share of golden answers that must parse (0-1)",
    )
    parser.add_argument(
        "--min-label-match",
        type=float,
        default=0.4,
        help="share of golden label values that must match (0-1)",
    )
    parser.add_argument("--budget-ms", type=float, default=2000.0, help="median latency bound")
    parser.add_argument("--latency-requests", type=int, default=5)
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="seconds to wait for /livez and /readyz"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument(
        "--expect-version",
        default="",
        help="the model version the service must serve (empty: not checked)",
    )
    return parser.parse_args(argv)


def setup(args: argparse.Namespace) -> Smoke:
    """The checks' inputs from the arguments, the params file and the split."""
    if not (0 <= args.min_parsed <= 1 and 0 <= args.min_label_match <= 1):
        raise ValueError("--min-parsed and --min-label-match: expected 0 to 1")
    if args.golden < 1 or args.latency_requests < 1:
        raise ValueError("--golden and --latency-requests: expected at least 1")
    params = load_params(args.params)
    if args.golden > params.serve.max_items:
        raise ValueError(
            f"--golden {args.golden}: more than serve.max_items "
            f"({params.serve.max_items}) inputs per request"
        )
    task = Task.from_params(params.task)
    rows = read_split(args.data)[: args.golden]
    check_rows(args.data, rows, task)
    key = args.api_key if args.api_key is not None else os.environ.get(params.serve.api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = args.url.rstrip("/")
    http = httpx.Client(base_url=url, headers=headers, timeout=args.timeout)
    client = openai.OpenAI(
        base_url=f"{url}/v1", api_key=key or "no-key", max_retries=0, timeout=args.timeout
    )
    return Smoke(
        url,
        key or "",
        task,
        params.serve.name,
        rows,
        http,
        client,
        args.min_parsed,
        args.min_label_match,
        args.budget_ms,
        args.latency_requests,
        args.ready_timeout,
        args.expect_version.strip(),
    )


def verdict(checks: list[Check]) -> tuple[bool, str]:
    """Whether no check failed, and the one-line reason or count."""
    failed = [c for c in checks if c.result == FAIL]
    if failed:
        names = ", ".join(c.name for c in failed)
        return False, f"smoke: FAIL {names}; {failed[0].name}: {failed[0].detail}"
    skipped = sum(c.result == SKIPPED for c in checks)
    note = f", {skipped} skipped" if skipped else ""
    return True, f"smoke: {len(checks) - skipped} checks ok{note}"


def run_smoke(argv: list[str] | None) -> tuple[bool, str]:
    """The smoke test as a library call (argv as main's): passed, and the table + verdict."""
    args = parse_args(argv)
    try:
        smoke = setup(args)
    except (ParamsError, DataError, ValueError) as err:
        return False, f"smoke: {err}"
    with smoke.http, smoke.client:
        checks = run_checks(smoke)
    ok, line = verdict(checks)
    return ok, f"{table(checks)}\n{line}"


def main(argv: list[str] | None = None) -> None:
    ok, summary = run_smoke(argv)
    *rows, line = summary.splitlines()  # one line per check (details are one line), verdict
    if rows:
        print("\n".join(rows))
    print(line, file=sys.stdout if ok else sys.stderr)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
