"""What hostile clients cost the served Bento: the figures behind its limits.

Run: python -m benchmarks.serve_attacks --bento llmops-service:latest \
        --data data/prepared/test.jsonl --out benchmarks/results/serve_attacks.json
     (after make bento; about two minutes on 2 cores)

One Bento under the real `bentoml serve` on a loopback port (`llmops.ship.localserver`), with an API
key and a request-log folder of its own that starts with `--log-mb` of earlier request log
(so start-up reads it back and feedback lookups have a big log behind them). Then, in turn:
1. poisoned requests: 12 ordinary answers sent at once with 3 requests holding a lone
   surrogate (answer, chat, feedback), 3 rounds: ordinary requests that failed;
2. made-up paths: /metrics size and scrape time before and after `--paths` requests to
   distinct unknown paths (one with %00);
3. keyless floods: `--keyless` requests without a valid key: request-log bytes added;
4. feedback for unknown request ids: median latency, with the log of step 0 behind it;
5. chunked bodies: 4 bodies of 50 MB at once with no Content-Length: the API process's
   resident memory before and after, and the bytes each client got to send;
6. slow clients: 200 connections sending their headers a byte a second: how many the
   server still held after `timeouts.headers_s` + 2 s.
Each figure is printed and written to `--out`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import select
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.bench_serve import bento_parser, request_bodies
from llmops.config.params import load_params
from llmops.ship.localserver import running


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def seed_log(folder: Path, mb: int) -> None:
    """`mb` of answered-request lines, as an earlier run of the service would have left."""
    line = {"request_id": "", "endpoint": "answer", "status": 200, "inputs": [{"x": "y" * 400}]}
    day = time.strftime("%Y-%m-%d", time.gmtime())
    with (folder / f"requests-{day}.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(mb * 2000):
            fh.write(json.dumps(line | {"request_id": f"old{i}"}) + "\n")


async def poisoned(url: str, key: str, bodies: list[dict], model: str, answered: str) -> dict:
    """Ordinary answers sent at once with three requests holding a lone surrogate (the
    task's own input fields, a chat message to the served model, a feedback comment), three
    rounds: how many ordinary requests failed, and what the poisoned ones were answered."""
    bad = "a \ud800 b"  # json.dumps writes it as the JSON escape
    fields = dict.fromkeys(bodies[0]["input"], bad)
    chat = {"model": model, "messages": [{"role": "user", "content": bad}]}
    odd = [("/v1/answer", {"input": fields}), ("/v1/chat/completions", chat),
           ("/v1/feedback", {"request_id": answered, "rating": 2, "comment": bad})]  # fmt: skip
    headers = auth(key) | {"Content-Type": "application/json"}
    failed, refused = 0, []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for _ in range(3):
            plain = [client.post("/v1/answer", json=b, headers=auth(key)) for b in bodies]
            posts = [client.post(p, content=json.dumps(b), headers=headers) for p, b in odd]
            done = await asyncio.gather(*plain, *posts)
            failed += sum(r.status_code != 200 for r in done[: len(plain)])
            refused += [r.status_code for r in done[len(plain) :]]
    return {"ordinary_sent": 3 * len(bodies), "ordinary_failed": failed,
            "poisoned_statuses": sorted(set(refused))}  # fmt: skip


def made_up_paths(url: str, n: int) -> dict:
    with httpx.Client(base_url=url, timeout=30) as client:
        before = client.get("/metrics").text
        for i in range(n):
            client.get(f"/made-up/{i}/%00")
        start = time.perf_counter()
        after = client.get("/metrics").text
        scrape = time.perf_counter() - start
    return {"paths": n, "metrics_bytes_before": len(before),
            "metrics_bytes_after": len(after), "scrape_ms_after": round(1000 * scrape, 1),
            "nul_in_metrics": "\x00" in after}  # fmt: skip


def keyless(url: str, n: int, logs: Path, body: dict) -> dict:
    size = lambda: sum(p.stat().st_size for p in logs.glob("*.jsonl"))  # noqa: E731
    before, start = size(), time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(n):
            client.post("/v1/answer", json=body)
    return {"requests": n, "seconds": round(time.perf_counter() - start, 1),
            "log_bytes_added": size() - before}  # fmt: skip


def unknown_feedback(url: str, key: str) -> dict:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(50):
            start = time.perf_counter()
            r = client.post("/v1/feedback", json={"request_id": f"nope{i}", "rating": 1},
                            headers=auth(key))  # fmt: skip
            times.append(1000 * (time.perf_counter() - start))
            assert r.status_code == 404, r.text
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def api_process(port: int) -> psutil.Process:
    """The `api` service's worker: of the processes holding the port's listening socket
    (BentoML's arbiter hands it to its worker), the biggest."""
    found = []
    for p in psutil.process_iter():
        try:
            if any(c.laddr.port == port and c.status == "LISTEN" for c in p.net_connections()):
                found.append((p.memory_info().rss, p.pid, p))
        except psutil.Error:
            continue
    if not found:
        raise RuntimeError(f"no process listens on {port}")
    return max(found)[2]


def chunked(url: str, key: str) -> dict:
    host, port = url.removeprefix("http://").split(":")
    process = api_process(int(port))
    rss = process.memory_info().rss
    head = (
        f"POST /v1/answer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    head = head.encode()
    chunk = b"%x\r\n%s\r\n" % (65_536, b"x" * 65_536)
    sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(4)]
    sent, statuses = [0] * 4, []
    for s in sockets:
        s.sendall(head)
    for k, s in enumerate(sockets):
        try:
            while sent[k] < 50 * 2**20 and not select.select([s], [], [], 0)[0]:
                s.sendall(chunk)
                sent[k] += len(chunk)
        except OSError:
            pass
        answer = s.recv(100).split(b" ")
        statuses.append(answer[1].decode() if len(answer) > 1 else "closed")
        s.close()
    peak = process.memory_info().rss
    return {"bodies": 4, "mb_each_sent": [round(x / 2**20, 1) for x in sent],
            "statuses": statuses, "api_rss_mb_before": round(rss / 2**20),
            "api_rss_mb_after": round(peak / 2**20)}  # fmt: skip


def slow_clients(url: str, headers_s: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(200)]
    line, open_ = b"POST /v1/answer HTTP/1.1\r\nHost: x\r\n", set(range(200))
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < headers_s + 2:
        for k in list(open_):
            try:
                sockets[k].send(line[i : i + 1])
                if select.select([sockets[k]], [], [], 0)[0]:  # answered 408, or closed
                    open_.discard(k)
            except OSError:
                open_.discard(k)
        i += 1
        time.sleep(1.0)
    for s in sockets:
        s.close()
    return {"connections": 200, "still_open_after_s": headers_s + 2, "still_open": len(open_)}


def main(argv: list[str] | None = None) -> None:
    parser = bento_parser(__doc__)
    parser.add_argument("--paths", type=int, default=3000)
    parser.add_argument("--keyless", type=int, default=10_000)
    parser.add_argument("--log-mb", type=int, default=200)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    bodies = request_bodies(params, args.data)[:12]
    key, out = secrets.token_hex(16), {}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        seed_log(logs, args.log_mb)
        env = {**os.environ, params.serve.api_key_env: key, "LLMOPS_LOG_DIR": str(logs)}
        started = time.perf_counter()
        with running(args.bento, env=env, timeout=600) as url:
            seconds = round(time.perf_counter() - started, 1)
            out["start_s_with_log"] = {"log_mb": args.log_mb, "seconds": seconds}
            r = httpx.post(f"{url}/v1/answer", json=bodies[0], headers=auth(key), timeout=60)
            answered = r.json()["request_id"]
            out["poisoned"] = asyncio.run(poisoned(url, key, bodies, params.serve.name, answered))
            out["made_up_paths"] = made_up_paths(url, args.paths)
            out["keyless"] = keyless(url, args.keyless, logs, bodies[0])
            out["unknown_feedback"] = unknown_feedback(url, key)
            out["chunked"] = chunked(url, key)
            out["slow_clients"] = slow_clients(url, params.serve.timeouts.headers_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
