"""Throughput and latency of the served Bento: batched generation against batch size 1.

Run: make bench-serve  (after make bento)
     (python -m benchmarks.bench_serve --params params.yaml --data data/prepared/test.jsonl \
        --bento llmops-service:latest --out benchmarks/results/serve.json)

One Bento, served twice by the real `bentoml serve` on a loopback port (`llmops.ship.localserver`),
one server at a time: batched (the default: requests join the running batch between
decoding steps, at most params.yaml serve.max_batch_size rows, `llmops.serve.scheduler`) and with
LLMOPS_BATCHING=off, where the generator answers one request at a time (the baseline,
batch size 1). At each concurrency level (--levels) that many closed-loop
clients (asyncio + httpx) send single-input POST /v1/answer requests, built from distinct
test rows, until --requests have been answered; both sides get the same rows at each level.
Uncounted requests from a few clients warm each server up first.

Throughput is answered requests and generated (completion) tokens per wall-clock second of
a level; latency is each request's round trip as its client saw it. The mean batch is the
rows per decoding step, from the generator's `llmops_decode_rows` histogram on /metrics.
Any request not answered 200 fails the run, naming it.

The log sink's cost (`log_sink` in the results): the batched server once more, its logs also
shipped to an S3 API (moto's server, a subprocess on loopback; `llmops.serve.logsink`), at
the aim level with the same rows: requests/s with the sink on against the batched side's,
where it is off (LLMOPS_LOG_URI="" on the two sides above, whatever params.yaml says). Every
line must reach the store (llmops_log_sink_written_lines on /metrics) or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmops.config.params import Params, load_params
from llmops.config.task import Task
from llmops.model.tokenised import read_split
from llmops.ship.localserver import free_port, running

SIDES = {"batching": "on", "baseline": "off"}  # result key -> LLMOPS_BATCHING
TARGETS = {"throughput_ratio": 3.0, "tail_latency_ratio": 4.0}  # at least, less than
AIM_CLIENTS = 32  # the clients the targets are measured at
# BentoML's batch dispatcher fits its latency model on its first ~11 batches, some of which
# wait for a 2nd or 3rd request; concurrent warm-up requests take it through that phase.
WARMUP_CLIENTS = 4


@dataclass(frozen=True)
class Outcome:
    """One request as its client saw it."""

    status: int  # 0: no HTTP answer (connection error, timeout)
    ms: float
    tokens: int  # generated tokens (usage.completion_tokens)
    error: str = ""


async def send(http: httpx.AsyncClient, body: dict) -> Outcome:
    start = time.perf_counter()
    try:
        response = await http.post("/v1/answer", json=body)
    except httpx.HTTPError as err:
        ms = 1000 * (time.perf_counter() - start)
        return Outcome(0, ms, 0, f"{type(err).__name__} {err}".strip())
    ms = 1000 * (time.perf_counter() - start)
    if response.status_code != 200:
        return Outcome(response.status_code, ms, 0, response.text[:200])
    return Outcome(200, ms, response.json()["answer"]["usage"]["completion_tokens"])


async def load(url: str, key: str, bodies: list[dict], clients: int) -> tuple[list[Outcome], float]:
    """`clients` closed-loop clients share `bodies`; the outcomes and the wall-clock seconds."""
    todo = iter(bodies)
    outcomes: list[Outcome] = []

    async def client(http: httpx.AsyncClient) -> None:
        while (body := next(todo, None)) is not None:
            outcomes.append(await send(http, body))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=httpx.Timeout(900.0)) as http:  # fmt: skip
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return outcomes, time.perf_counter() - start


def batches(url: str) -> tuple[float, float]:
    """Sum and count of the generator's rows-per-step histogram."""
    total = samples(url, "llmops_decode_rows")
    return total.get("_sum", 0.0), total.get("_count", 0.0)


def samples(url: str, name: str) -> dict[str, float]:
    """The samples of metric family `name` on /metrics, summed over labels, by suffix."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=30).text
    total: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                suffix = sample.name.removeprefix(family.name)
                total[suffix] = total.get(suffix, 0.0) + sample.value
    return total


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarize(outcomes: list[Outcome], seconds: float, batched: tuple[float, float]) -> dict:
    ok = [o for o in outcomes if o.status == 200]
    failed = sorted({f"{o.status} {o.error}" for o in outcomes if o.status != 200})
    ms = [o.ms for o in ok] or [0.0]
    tokens = sum(o.tokens for o in ok)
    return {
        "requests": len(outcomes),
        "seconds": seconds,
        "requests_per_s": len(ok) / seconds,
        "tokens_per_s": tokens / seconds,
        "generated_tokens": tokens,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_batch_size": batched[0] / batched[1] if batched[1] else None,
        "errors": len(outcomes) - len(ok),
        "error_examples": failed[:3],
    }


def serve_side(bento: str, batching: str, plan: list[tuple[int, list[dict]]],
               warmup: list[dict], env: dict, cwd: Path | None, key_env: str,
               log_uri: str = "") -> dict:  # fmt: skip
    """Serve the Bento with LLMOPS_BATCHING=`batching` (its logs also to `log_uri`, if any);
    run every level; their summaries (and, with a sink, the lines it wrote)."""
    key = secrets.token_urlsafe(16)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-logs-") as logs:
        side_env = {**env, "LLMOPS_BATCHING": batching, "LLMOPS_LOG_DIR": logs, key_env: key,
                    "LLMOPS_LOG_URI": log_uri}  # fmt: skip
        with running(bento, env=side_env, cwd=cwd) as url:
            if warmup:
                asyncio.run(load(url, key, warmup, min(WARMUP_CLIENTS, len(warmup))))
            for clients, bodies in plan:
                before = batches(url)
                outcomes, seconds = asyncio.run(load(url, key, bodies, clients))
                after = batches(url)
                batched = (after[0] - before[0], after[1] - before[1])
                out[str(clients)] = summarize(outcomes, seconds, batched)
            if log_uri:
                out["sink"] = sink_delivered(url)
    return out


@contextmanager
def s3_store() -> Iterator[dict]:
    """moto's S3 server in a subprocess on a loopback port, with a bucket; the AWS
    environment that points at it. Stopped after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.put(f"{url}/bench-serve", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"moto's S3 server did not start on {url}") from None
                time.sleep(0.2)
        yield {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def sink_delivered(url: str, timeout: float = 120.0) -> dict:
    """Once the sink holds nothing (at most `timeout` s): lines written, dropped, failures."""
    deadline = time.monotonic() + timeout
    while samples(url, "llmops_log_sink_buffered_lines").get("", 0.0) > 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {
        "lines_written": samples(url, "llmops_log_sink_written_lines").get("_total", 0.0),
        "lines_dropped": samples(url, "llmops_log_sink_dropped_lines").get("_total", 0.0),
        "lines_buffered": samples(url, "llmops_log_sink_buffered_lines").get("", 0.0),
        "write_failures": samples(url, "llmops_log_sink_write_failures").get("_total", 0.0),
    }


def sink_side(bento: str, level: tuple[int, list[dict]], warmup: list[dict], env: dict,
              cwd: Path | None, key_env: str, off: dict) -> dict:  # fmt: skip
    """The batched server at `level` with its logs shipped to an S3 API on loopback, against
    `off` (the batched side's summary at that level, no sink); fails unless every line of
    the run (warm-up and level, one per request) reached the store."""
    with s3_store() as aws:
        on = serve_side(bento, "on", [level], warmup, {**env, **aws}, cwd, key_env,
                        log_uri="s3://bench-serve/logs")  # fmt: skip
    sink, summary = on.pop("sink"), on[str(level[0])]
    lines = len(warmup) + summary["requests"]
    if summary["errors"] == 0 and (sink["lines_written"] != lines or sink["lines_dropped"]):
        raise SystemExit(f"log sink: {sink} for {lines} requests: lines not delivered")
    return {
        "clients": level[0], "requests": summary["requests"], "errors": summary["errors"],
        "error_examples": summary["error_examples"],
        "off_requests_per_s": off["requests_per_s"], "on_requests_per_s": summary["requests_per_s"],
        "ratio": summary["requests_per_s"] / off["requests_per_s"],
        "on_p99_ms": summary["p99_ms"], "off_p99_ms": off["p99_ms"],
        "store": "moto S3 server, a subprocess on loopback", **sink,
    }  # fmt: skip


def request_bodies(params: Params, data: Path) -> list[dict]:
    """A `POST /v1/answer` body per row of a prepared split: the task's input fields."""
    fields = [f.name for f in Task.from_params(params.task).inputs]
    return [{"input": {name: row[name] for name in fields}} for row in read_split(data)]


def bento_parser(doc: str) -> argparse.ArgumentParser:
    """The options every serving benchmark takes: params, a prepared split, Bento, output."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="a prepared split (JSONL)")
    parser.add_argument("--bento", default="llmops-service:latest")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def bench(params_path: Path, data: Path, bento: str, levels: list[int], requests: list[int],
          warmup: int = 32, env: dict | None = None, cwd: Path | None = None) -> dict:  # fmt: skip
    """Both servers at every level; the results (fails if any request was not answered 200)."""
    params = load_params(params_path)
    bodies = request_bodies(params, data)

    def cycle(start: int, n: int) -> list[dict]:
        return [bodies[(start + i) % len(bodies)] for i in range(n)]

    starts = [sum(requests[:i]) for i in range(len(levels))]
    plan = [(c, cycle(s, n)) for c, s, n in zip(levels, starts, requests, strict=True)]
    warm = cycle(sum(requests), warmup)  # rows the levels do not use, when there are enough
    overrides = {**os.environ, **(env or {})}.get("BENTOML_CONFIG_OPTIONS", "")
    result: dict = {
        "machine": {"platform": platform.platform(), "machine": platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "bento": bento, "bentoml": importlib.metadata.version("bentoml"),
        "bentoml_config_options": overrides,  # BentoML settings changed for this run, if any
        "max_batch_size": params.serve.max_batch_size,
        "max_queue": params.serve.max_queue,
        "levels": levels, "warmup_requests": warmup, "distinct_inputs": len(bodies),
    }  # fmt: skip
    started = time.perf_counter()
    for side, batching in SIDES.items():
        result[side] = serve_side(bento, batching, plan, warm, env or {}, cwd,
                                  params.serve.api_key_env)  # fmt: skip
    at = aim_level(levels)
    level = next(p for p in plan if str(p[0]) == at)
    result["log_sink"] = sink_side(bento, level, warm, env or {}, cwd, params.serve.api_key_env,
                                   result["batching"][at])  # fmt: skip
    result["total_seconds"] = time.perf_counter() - started
    failed = [f"{side} at {c} clients: {r['errors']} ({'; '.join(r['error_examples'])})"
              for side in SIDES for c, r in result[side].items() if r["errors"]]  # fmt: skip
    if result["log_sink"]["errors"]:
        sink = result["log_sink"]
        failed.append(f"log sink at {at} clients: {sink['errors']} "
                      f"({'; '.join(sink['error_examples'])})")  # fmt: skip
    if failed:
        raise SystemExit("requests not answered 200: " + " | ".join(failed))
    return result | headline(result["batching"], result["baseline"], levels)


def aim_level(levels: list[int]) -> str:
    """The level the targets are read at: AIM_CLIENTS, or the most clients measured."""
    return str(min(AIM_CLIENTS, max(levels))) if AIM_CLIENTS not in levels else str(AIM_CLIENTS)


def headline(ours: dict, base: dict, levels: list[int]) -> dict:
    """The two figures with targets: throughput gain at AIM_CLIENTS (or the most clients
    measured, when fewer), and the tail latency there against one client's median, with
    batching; `missed` names each target not met."""
    at = aim_level(levels)
    fewest = str(min(levels))
    speed = ours[at]["requests_per_s"] / base[at]["requests_per_s"]
    tail = ours[at]["p99_ms"] / ours[fewest]["p50_ms"]
    aims = {
        "throughput_ratio": f">= {TARGETS['throughput_ratio']} (batching / baseline "
        f"req/s at {at} clients)",
        "tail_latency_ratio": f"< {TARGETS['tail_latency_ratio']} (batching p99 at "
        f"{at} clients / batching p50 at {fewest})",
    }
    missed = [f"throughput_ratio {speed:.2f}, aim {aims['throughput_ratio']}"] * (
        speed < TARGETS["throughput_ratio"]
    ) + [f"tail_latency_ratio {tail:.2f}, aim {aims['tail_latency_ratio']}"] * (
        tail >= TARGETS["tail_latency_ratio"]
    )
    return {
        "throughput_ratio": speed,
        "tail_latency_ratio": tail,
        "targets": {**aims, "met": not missed, "missed": missed},
    }


def table(result: dict) -> str:
    lines = ["| side | clients | requests | seconds | req/s | tokens/s | p50 ms | p99 ms "
             "| mean batch |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    names = {"batching": "batched (iteration-level)", "baseline": "batch size 1 (baseline)"}
    for side, name in names.items():
        for clients, r in result[side].items():
            batch = "-" if r["mean_batch_size"] is None else f"{r['mean_batch_size']:.1f}"
            lines.append(
                f"| {name} | {clients} | {r['requests']} | {r['seconds']:.1f} "
                f"| {r['requests_per_s']:.2f} | {r['tokens_per_s']:,.0f} | {r['p50_ms']:,.0f} "
                f"| {r['p99_ms']:,.0f} | {batch} |"
            )
    speed, tail = result["throughput_ratio"], result["tail_latency_ratio"]
    lines.append(
        f"\nthroughput_ratio {speed:.1f} ({result['targets']['throughput_ratio']}); "
        f"tail_latency_ratio {tail:.1f} ({result['targets']['tail_latency_ratio']})"
    )
    if sink := result.get("log_sink"):
        lines.append(
            f"log sink at {sink['clients']} clients: {sink['on_requests_per_s']:.2f} req/s on, "
            f"{sink['off_requests_per_s']:.2f} off (ratio {sink['ratio']:.2f}); "
            f"{sink['lines_written']:.0f} lines written, {sink['write_failures']:.0f} failed writes"
        )
    return "\n".join(lines)


def counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = bento_parser(__doc__)
    parser.add_argument("--levels", type=counts, default=[1, 8, 32, 64],
                        help="clients, e.g. 1,8,32,64")  # fmt: skip
    parser.add_argument("--requests", type=counts, default=[64, 256, 256, 256],
                        help="requests per level: one number, or one per level")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=32, help="uncounted requests per server")
    args = parser.parse_args(argv)
    requests = args.requests * len(args.levels) if len(args.requests) == 1 else args.requests
    if len(requests) != len(args.levels):
        parser.error(f"--requests: {len(requests)} numbers for {len(args.levels)} levels")
    result = bench(args.params, args.data, args.bento, args.levels, requests, args.warmup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    if result["bentoml_config_options"]:
        print(f"BentoML config overrides: {result['bentoml_config_options']}")
    print(f"total: {result['total_seconds']:.0f} s, both servers started and stopped included")
    if result["targets"]["missed"]:  # the results are written; the command still fails
        sys.exit("bench-serve: target missed: " + "; ".join(result["targets"]["missed"]))


if __name__ == "__main__":
    main()
