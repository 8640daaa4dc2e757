"""Quality gates: floors, regressions against a baseline, skipped (not passed) without one,
and the command's exit status."""

from __future__ import annotations

import json
import subprocess

import pytest

from llmops.gate import check, main
from llmops.params import GateParams
from tests.synthetic import write_params

GATES = GateParams(
    min={"json_valid": 0.98, "topic_accuracy": 0.8, "test_loss": 1.0},
    max_drop={"topic_accuracy": 0.02, "test_loss": 0.1, "sentiment_rank_error": 0.05},
)
NOW = {"json_valid": 0.99, "topic_accuracy": 0.85, "test_loss": 0.5, "sentiment_rank_error": 0.3}


def test_floors_and_drops_pass_and_fail_by_hand(task):
    base = {"topic_accuracy": 0.86, "test_loss": 0.35, "sentiment_rank_error": 0.2}
    results = check(task, GATES, NOW, base)
    status = {r.gate: r.status for r in results}
    assert status == {
        "json_valid >= 0.98": "pass",
        "topic_accuracy >= 0.8": "pass",
        "test_loss <= 1": "pass",  # lower is better for a loss
        "topic_accuracy drop <= 0.02 vs baseline": "pass",  # 0.85 >= 0.86 - 0.02
        "test_loss drop <= 0.1 vs baseline": "fail",  # 0.5 > 0.35 + 0.1
        "sentiment_rank_error drop <= 0.05 vs baseline": "fail",  # 0.3 > 0.2 + 0.05
    }
    drop = next(r for r in results if r.gate.startswith("topic_accuracy drop"))
    assert drop.threshold == pytest.approx(0.84)


def test_relative_gates_without_baseline_are_skipped_not_passed(task):
    results = check(task, GATES, NOW, None)
    assert [r.status for r in results if "drop" in r.gate] == ["skipped"] * 3


def test_a_missing_metric_fails_its_floor(task):
    results = check(task, GATES, {"json_valid": 1.0}, None)
    assert {r.gate: r.status for r in results}["topic_accuracy >= 0.8"] == "fail"


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)  # fmt: skip


def test_command_reads_the_baseline_from_git_and_exits_1_on_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    metrics = tmp_path / "metrics" / "eval.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"tuned": {"json_valid": 1.0, "topic_accuracy": 0.9}}))
    gates = {"min": {"json_valid": 0.98}, "max_drop": {"topic_accuracy": 0.02}}
    write_params(tmp_path / "params.yaml", {"gate": gates})
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "main")
    args = ["--metrics", "metrics/eval.json"]

    main(args)  # equal to main: passes
    assert "all 2 checked gates pass" in capsys.readouterr().out
    metrics.write_text(json.dumps({"tuned": {"json_valid": 1.0, "topic_accuracy": 0.85}}))
    with pytest.raises(SystemExit, match="1 gate\\(s\\) failed: topic_accuracy drop"):
        main(args)
    assert "| `topic_accuracy drop <= 0.02 vs baseline` | 0.8500 | 0.8800 | ❌ fail" in (
        capsys.readouterr().out
    )
    main([*args, "--baseline", "no-such-ref"])
    out = capsys.readouterr().out
    assert "⏭️ skipped" in out and "regression gates skipped" in out


def test_a_gate_naming_a_metric_the_task_lacks_stops_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"gate": {"min": {"priority_accuracy": 0.5}}})
    with pytest.raises(SystemExit, match=r"gate: .*gate.min.priority_accuracy: no such metric"):
        main(["--metrics", "metrics/eval.json"])
