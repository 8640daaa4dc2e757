"""The monitoring files (monitoring/): promtool checks and unit-tests the alert rules and the
example config, the rules' thresholds agree with params.yaml, and the Grafana dashboard is
valid and queries only metrics the service exports. Each check is shown failing on a broken
copy. promtool comes from `make system-deps`; without it these tests fail, never skip.

The exported names are read from the code that declares them (`EXPORTERS`);
tests/e2e/test_prometheus_e2e.py checks them against a real /metrics.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmops.config.params import Params, load_params

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
ALERTS_TEST = MONITORING / "prometheus" / "alerts_test.yml"
EXAMPLE_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "llmops.json"
# Where the service declares its metrics (bentoml.metrics / prometheus_client calls).
EXPORTERS = (REPO / "src" / "llmops" / "serve" / "telemetry.py", REPO / "service.py")
DECLARED = re.compile(r"metrics\.(Counter|Gauge|Histogram)\(\s*name=\"(\w+)\"")
# What prometheus_client exposes for each kind (multiprocess mode: no `_created`).
SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_count", "_sum")}
# What the dashboard must show (the brief of monitoring/README.md).
SHOWN = (
    "llmops_requests_total",
    "llmops_request_seconds_bucket",
    "llmops_tokens_total",
    "llmops_unparsed_answers_total",
    "llmops_in_flight",
    "llmops_overload_rejections_total",
    "llmops_decode_rows_bucket",
)

# PromQL words that are no metric names (binary operators, modifiers, grouping).
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_WORDS = GROUPING | {"bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"}


def promtool() -> str:
    """promtool's path; a failure (never a skip) saying how to install it when missing."""
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not on PATH: run `make system-deps` (Debian's prometheus package)")
    return found


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [promtool(), *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def exported_metrics() -> set[str]:
    """Every series name the service's /metrics exposes, from the declarations in EXPORTERS."""
    names = set()
    for source in EXPORTERS:
        for kind, name in DECLARED.findall(source.read_text()):
            names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label values, ranges, groupings and
    function names left out)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings, which may hold anything
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    words = re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", expr)  # not in 1h, 1e3
    return {w[1] for w in words if not w[2] and w[1].lower() not in PROMQL_WORDS}


def alert_rules(path: Path = ALERTS) -> dict[str, dict]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def threshold(expr: str) -> float:
    """The number an alert's expression is compared with: `> 0.02`, `> 5000 / 1000`, `>= 0.8 * 64`."""
    found = re.search(r">=?\s*([\d.]+)\s*(?:([*/])\s*([\d.]+))?\s*$", expr.strip())
    assert found, f"no trailing comparison with a number in {expr!r}"
    value, op, other = found.groups()
    if op is None:
        return float(value)
    return float(value) * float(other) if op == "*" else float(value) / float(other)


def expected_thresholds(params: Params) -> dict[str, float]:
    """The alerts whose threshold is a params.yaml knob, and that knob in the rule's unit."""
    monitor = params.monitor
    return {
        "LlmopsErrorShareHigh": monitor.max_error_share,
        "LlmopsP99LatencyHigh": monitor.max_p99_ms / 1000,  # the histogram is in seconds
        "LlmopsUnparsedShareHigh": monitor.max_unparsed_share,
        "LlmopsInFlightNearLimit": 0.8 * params.serve.max_queue,
    }


def disagreements(rules: dict[str, dict], params: Params) -> list[str]:
    wrong = []
    for name, wanted in expected_thresholds(params).items():
        if name not in rules:
            wrong.append(f"{name}: missing from the rules")
        elif abs(threshold(rules[name]["expr"]) - wanted) > 1e-9:
            wrong.append(f"{name}: threshold {threshold(rules[name]['expr'])}, params {wanted}")
    return wrong


def untested_alerts(rules: dict[str, dict], tests_path: Path = ALERTS_TEST) -> list[str]:
    """Alerts without both a firing case and a quiet case (exp_alerts empty) in the tests."""
    cases = [
        c for t in yaml.safe_load(tests_path.read_text())["tests"] for c in t["alert_rule_test"]
    ]
    missing = []
    for name in rules:
        outcomes = {bool(c.get("exp_alerts")) for c in cases if c["alertname"] == name}
        missing += [
            f"{name}: no {kind} case"
            for kind, b in (("firing", True), ("quiet", False))
            if b not in outcomes
        ]
    return missing


def dashboard_queries(dashboard: dict) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' (rows' too) and its variables'."""
    panels = list(dashboard["panels"])
    panels += [p for row in dashboard["panels"] for p in row.get("panels", [])]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            exprs.append(found.group(1) if found else variable["definition"])
    return exprs


def unknown_metrics(exprs: list[str]) -> dict[str, set[str]]:
    exported = exported_metrics()
    return {e: metric_names(e) - exported for e in exprs if metric_names(e) - exported}


def test_promtool_checks_the_rules_and_the_example_config():
    rules = run_promtool("check", "rules", ALERTS)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout
    config = run_promtool("check", "config", EXAMPLE_CONFIG)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_promtool_rejects_a_broken_copy_of_the_rules(tmp_path):
    broken = tmp_path / "alerts.yml"
    broken.write_text(ALERTS.read_text().replace("histogram_quantile(0.99,", "histogram_q(0.99,"))
    done = run_promtool("check", "rules", broken)
    assert done.returncode != 0 and "histogram_q" in done.stdout + done.stderr


def test_a_missing_promtool_fails_the_tests_with_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="make system-deps"):
        promtool()


def test_the_alerts_unit_tests_pass():
    done = run_promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerts_unit_tests_fail_when_a_rule_changes(tmp_path):
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    moved = ALERTS.read_text().replace("> 0.02", "> 0.05", 1)  # 4.8% errors no longer fire
    (tmp_path / ALERTS.name).write_text(moved)
    done = run_promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert done.returncode != 0
    assert "LlmopsErrorShareHigh" in done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing_and_quiet_and_says_what_to_do(tmp_path):
    rules = alert_rules()
    assert set(rules) >= {
        "LlmopsErrorShareHigh",
        "LlmopsP99LatencyHigh",
        "LlmopsOverloaded",
        "LlmopsInFlightNearLimit",
        "LlmopsUnparsedShareHigh",
    }
    assert untested_alerts(rules) == []
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+m", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80
    described = rules["LlmopsErrorShareHigh"]["annotations"]["description"]
    assert "params.yaml monitor.max_error_share" in described and "2%" in described
    cases = yaml.safe_load(ALERTS_TEST.read_text())
    for test in cases["tests"]:  # a copy with no quiet case of one alert is caught
        test["alert_rule_test"] = [
            c
            for c in test["alert_rule_test"]
            if c["alertname"] != "LlmopsOverloaded" or c.get("exp_alerts")
        ]
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(cases))
    assert untested_alerts(rules, tmp_path / "alerts_test.yml") == [
        "LlmopsOverloaded: no quiet case"
    ]


def test_the_rule_thresholds_agree_with_params_yaml():
    params = load_params(REPO / "params.yaml")
    rules = alert_rules()
    assert disagreements(rules, params) == []
    assert threshold(rules["LlmopsP99LatencyHigh"]["expr"]) * 1000 == params.monitor.max_p99_ms
    assert threshold(rules["LlmopsErrorShareHigh"]["expr"]) == params.monitor.max_error_share
    moved = dataclasses.replace(
        params, monitor=dataclasses.replace(params.monitor, max_p99_ms=2500, max_error_share=0.1)
    )
    assert disagreements(rules, moved) == [
        "LlmopsErrorShareHigh: threshold 0.02, params 0.1",
        "LlmopsP99LatencyHigh: threshold 5.0, params 2.5",
    ]


def test_threshold_and_metric_names_read_promql():
    assert threshold("a > 0.02") == 0.02
    assert threshold("max by (job) (b) >= 0.8 * 64") == pytest.approx(51.2)
    assert threshold("histogram_quantile(0.99, x) > 5000 / 1000") == 5.0
    expr = (
        'sum by (job, le) (rate(a_total{status=~"5..", x="rate(b)"}[5m])) '
        "/ on (job) group_left sum(b_count offset 1h) > bool 0.8 * 64 and c:rule"
    )
    assert metric_names(expr) == {"a_total", "b_count", "c:rule"}


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 7
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs) and all(t["expr"] for t in panel["targets"])
    read = set().union(*map(metric_names, dashboard_queries(dashboard)))
    assert read >= set(SHOWN)


def test_the_dashboard_and_the_rules_query_only_exported_metrics():
    exported = exported_metrics()
    assert set(SHOWN) <= exported and "llmops_decode_rows_count" in exported
    dashboard = json.loads(DASHBOARD.read_text())
    assert unknown_metrics(dashboard_queries(dashboard)) == {}
    assert unknown_metrics([rule["expr"] for rule in alert_rules().values()]) == {}
    dashboard["panels"][0]["targets"][0]["expr"] = "rate(llmops_request_total[5m])"  # a typo
    assert unknown_metrics(dashboard_queries(dashboard)) == {
        "rate(llmops_request_total[5m])": {"llmops_request_total"}
    }


def test_the_dashboard_threshold_lines_agree_with_params_yaml():
    monitor = load_params(REPO / "params.yaml").monitor
    lines = {
        p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
        for p in json.loads(DASHBOARD.read_text())["panels"]
        if p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    }
    assert lines == {
        "Error share (5xx)": monitor.max_error_share,
        "Latency of answered requests": monitor.max_p99_ms / 1000,
        "Unparsed share": monitor.max_unparsed_share,
    }
