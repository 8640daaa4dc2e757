"""The serving benchmark (make bench-serve) at tiny sizes against the tiny project's Bento:
both servers start, every request is answered, the results JSON has its figures, and the
log sink's comparison (sink on, moto's S3 on loopback, against off) is in it."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_serve

pytestmark = pytest.mark.e2e


def test_bench_serve_runs_both_servers_and_reports_every_level(bento):
    levels = [1, 4]
    result = bench_serve.bench(
        bento.project / "params.yaml", bento.project / "data/prepared/test.jsonl", bento.tag,
        levels, [8, 8], warmup=2, env=bento.env, cwd=bento.project,
    )  # fmt: skip
    assert json.loads(json.dumps(result)) == result  # plain JSON, as main writes it
    assert result["levels"] == levels
    assert result["machine"]["cpus"] >= 1
    assert result["max_batch_size"] >= 2
    for side in ("batching", "baseline"):
        assert sorted(result[side]) == ["1", "4"]
        for r in result[side].values():
            assert r["requests"] == 8 and r["errors"] == 0
            assert r["requests_per_s"] > 0 and r["tokens_per_s"] > 0
            assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert result["baseline"]["4"]["mean_batch_size"] == 1.0  # LLMOPS_BATCHING=off
    assert result["batching"]["4"]["mean_batch_size"] > 1  # rows generated together
    assert result["throughput_ratio"] > 0 and result["tail_latency_ratio"] > 0
    assert bench_serve.table(result).count("\n| ") == 4  # a row per side and level
    sink = result["log_sink"]  # the batched server again, its logs shipped to moto's S3
    assert sink["clients"] == 4 and sink["requests"] == 8 and sink["errors"] == 0
    assert sink["off_requests_per_s"] == result["batching"]["4"]["requests_per_s"]
    assert sink["on_requests_per_s"] > 0 and sink["ratio"] > 0
    assert sink["lines_written"] == 2 + 8 and sink["lines_dropped"] == 0  # warm-up + level
    assert sink["lines_buffered"] == 0
    assert "log sink at 4 clients" in bench_serve.table(result)


def test_a_missed_target_is_named_and_fails_the_command(monkeypatch, tmp_path, capsys):
    side = {str(n): {"requests": 8, "seconds": 1.0, "requests_per_s": rps, "tokens_per_s": 9.0,
                     "p50_ms": p50, "p99_ms": p99, "mean_batch_size": None}
            for n, rps, p50, p99 in ((1, 5.0, 100.0, 120.0), (32, 20.0, 700.0, 900.0))}  # fmt: skip
    slow = {**side, "32": {**side["32"], "requests_per_s": 2.0}}
    result = {"levels": [1, 32], "batching": side, "baseline": slow,
              "bentoml_config_options": "", "total_seconds": 1.0}  # fmt: skip
    result |= bench_serve.headline(side, slow, [1, 32])
    assert result["throughput_ratio"] == 10.0 and result["tail_latency_ratio"] == 9.0
    (missed,) = result["targets"]["missed"]
    assert missed.startswith("tail_latency_ratio 9.00") and not result["targets"]["met"]
    monkeypatch.setattr(bench_serve, "bench", lambda *a, **k: result)
    data = tmp_path / "test.jsonl"
    with pytest.raises(SystemExit) as stop:
        bench_serve.main(["--data", str(data), "--out", str(tmp_path / "serve.json"),
                          "--levels", "1,32", "--requests", "8"])  # fmt: skip
    assert "tail_latency_ratio" in str(stop.value.code)
    assert json.loads((tmp_path / "serve.json").read_text())["targets"]["met"] is False
