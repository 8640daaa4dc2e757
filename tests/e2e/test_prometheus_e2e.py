"""A real Prometheus (`prometheus` from `make system-deps`) on loopback scraping the served
Bento every second with monitoring/prometheus/alerts.yml loaded: the target is up and counts
the requests sent through the API, /metrics exposes every name the monitoring files rely on,
every alert rule evaluates with health "ok", and every dashboard query runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from llmops.ship.localserver import free_port
from tests.bentos import AUTH
from tests.repo.test_monitoring_rules import (
    ALERTS,
    DASHBOARD,
    alert_rules,
    dashboard_queries,
    exported_metrics,
    metric_names,
)

pytestmark = pytest.mark.e2e

JOB = "llmops"
# What Grafana puts in the dashboard's queries, as this Prometheus is asked them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": JOB}
TEXTS = ("the lamp broke after a week", "great sound, fast delivery", "it never arrived")


def wait_for(what: str, check: Callable[[], object], seconds: float = 90) -> object:
    """`check()`'s first truthy value, polled until `seconds` pass (then the test fails)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"waited {seconds}s for {what}")


@pytest.fixture(scope="module")
def prometheus(served_url, tmp_path_factory) -> Iterator[str]:
    """Prometheus on a free loopback port scraping `served_url`; its URL. Stopped after."""
    binary = shutil.which("prometheus")
    if not binary:
        pytest.fail("prometheus is not on PATH: run `make system-deps`")
    home = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [urlsplit(served_url).netloc]}],
            }
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        binary,
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (home / "prometheus.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus to be ready", lambda: _ready(process, url, home), seconds=60)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _ready(process: subprocess.Popen, url: str, home: Path) -> bool:
    if process.poll() is not None:
        pytest.fail(f"prometheus exited: {(home / 'prometheus.log').read_text()[-3000:]}")
    return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200


def query(prometheus: str, expr: str) -> dict:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    assert r.status_code == 200, f"{expr}: {r.status_code} {r.text[:500]}"
    return r.json()


def value(prometheus: str, expr: str) -> float:
    result = query(prometheus, expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def answered(served_url, prometheus) -> int:
    """Answers sent through the API once Prometheus scrapes; waits until it has counted them."""
    wait_for("the first scrape", lambda: value(prometheus, f'up{{job="{JOB}"}}') == 1)
    series = f'llmops_requests_total{{job="{JOB}",endpoint="answer",status="200"}}'
    for sent, text in enumerate(TEXTS, 1):
        r = httpx.post(
            f"{served_url}/v1/answer", json={"input": {"text": text}}, headers=AUTH, timeout=120
        )
        assert r.status_code == 200, r.text
        # Scraped before the next: the series then grows within a rate's window.
        wait_for(f"answer {sent} in Prometheus", lambda n=sent: value(prometheus, series) >= n)
    return len(TEXTS)


def test_prometheus_scrapes_the_served_bento_and_counts_its_requests(prometheus, answered):
    r = httpx.get(f"{prometheus}/api/v1/targets", timeout=30)
    (target,) = r.json()["data"]["activeTargets"]
    assert target["labels"]["job"] == JOB and target["health"] == "up"
    assert target["scrapeUrl"].endswith("/metrics")
    series = f'llmops_requests_total{{job="{JOB}",endpoint="answer",status="200"}}'
    assert value(prometheus, series) == answered
    assert value(prometheus, f'llmops_request_seconds_count{{job="{JOB}"}}') == answered
    assert value(prometheus, f'sum(llmops_tokens_total{{job="{JOB}",kind="completion"}})') > 0


def test_the_served_metrics_include_every_name_the_monitoring_files_use(
    served_url, prometheus, answered
):
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in httpx.get(f"{served_url}/metrics", timeout=30).text.splitlines()
        if line and not line.startswith("#")
    }
    # The names read from the code miss none the service exposes (labelled series the test
    # does not exercise, like the log sink's, appear only after their first count).
    ours = {name for name in exposed if name.startswith("llmops_")}
    assert ours <= exported_metrics(), sorted(ours - exported_metrics())
    used = set().union(*map(metric_names, dashboard_queries(json.loads(DASHBOARD.read_text()))))
    used |= set().union(*(metric_names(rule["expr"]) for rule in alert_rules().values()))
    assert used <= exposed, sorted(used - exposed)
    # The same names as Prometheus stored them from the scrapes.
    names = httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=30).json()["data"]
    assert used <= set(names), sorted(used - set(names))


def test_every_alert_rule_is_loaded_and_evaluates_ok(prometheus, answered):
    wanted = set(alert_rules())

    def evaluated() -> dict[str, dict] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
        done = set(rules) == wanted and all(r["health"] != "unknown" for r in rules.values())
        return rules if done else None

    rules = wait_for("every rule evaluated", evaluated, seconds=60)
    assert {name: r["health"] for name, r in rules.items()} == dict.fromkeys(wanted, "ok")
    assert all(not r.get("lastError") for r in rules.values())


def test_every_dashboard_query_runs_on_the_real_prometheus(prometheus, answered):
    results = {}
    for expr in dashboard_queries(json.loads(DASHBOARD.read_text())):
        for variable, replacement in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, replacement)
        answer = query(prometheus, expr)
        assert answer["status"] == "success", (expr, answer)
        results[expr] = answer["data"]["result"]
    by_endpoint = f'sum by (endpoint, status) (rate(llmops_requests_total{{job=~"{JOB}"}}[1m]))'
    (served,) = results[by_endpoint]
    assert served["metric"] == {"endpoint": "answer", "status": "200"}
    assert float(served["value"][1]) > 0
    tokens = f'sum by (kind) (rate(llmops_tokens_total{{job=~"{JOB}"}}[1m]))'
    assert {r["metric"]["kind"] for r in results[tokens]} == {"prompt", "completion"}
    assert results["llmops_requests_total"]  # the job variable's series
