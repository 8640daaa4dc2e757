"""Quality gates: floors, regressions against a baseline, skipped (not passed) without one,
and the command's exit status."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from llmops.gate import check, main
from llmops.params import GateParams

GATES = GateParams(
    min={"json_valid": 0.98, "category_accuracy": 0.8, "test_loss": 1.0},
    max_drop={"category_accuracy": 0.02, "test_loss": 0.1},
)
NOW = {"json_valid": 0.99, "category_accuracy": 0.85, "test_loss": 0.5}


def test_floors_and_drops_pass_and_fail_by_hand():
    results = check(GATES, NOW, {"category_accuracy": 0.86, "test_loss": 0.35})
    status = {r.gate: r.status for r in results}
    assert status == {
        "json_valid >= 0.98": "pass",
        "category_accuracy >= 0.8": "pass",
        "test_loss <= 1": "pass",  # lower is better for a loss
        "category_accuracy drop <= 0.02 vs baseline": "pass",  # 0.85 >= 0.86 - 0.02
        "test_loss drop <= 0.1 vs baseline": "fail",  # 0.5 > 0.35 + 0.1
    }
    drop = next(r for r in results if r.gate.startswith("category_accuracy drop"))
    assert drop.threshold == pytest.approx(0.84)


def test_relative_gates_without_baseline_are_skipped_not_passed():
    results = check(GATES, NOW, None)
    assert [r.status for r in results if "drop" in r.gate] == ["skipped", "skipped"]


def test_a_missing_metric_fails_its_floor():
    results = check(GATES, {"json_valid": 1.0}, None)
    assert {r.gate: r.status for r in results}["category_accuracy >= 0.8"] == "fail"


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)  # fmt: skip


def test_command_reads_the_baseline_from_git_and_exits_1_on_failure(
    tmp_path, monkeypatch, capsys, repo
):
    monkeypatch.chdir(tmp_path)
    metrics = tmp_path / "metrics" / "eval.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"tuned": {"json_valid": 1.0, "category_accuracy": 0.9}}))
    gates = {"min": {"json_valid": 0.98}, "max_drop": {"category_accuracy": 0.02}}
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["eval"]["gates"] = gates
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "main")

    main([])  # equal to main: passes
    assert "all 2 checked gates pass" in capsys.readouterr().out
    metrics.write_text(json.dumps({"tuned": {"json_valid": 1.0, "category_accuracy": 0.85}}))
    with pytest.raises(SystemExit, match="1 gate\\(s\\) failed: category_accuracy drop"):
        main([])
    assert "| `category_accuracy drop <= 0.02 vs baseline` | 0.8500 | 0.8800 | ❌ fail" in (
        capsys.readouterr().out
    )
    main(["--baseline", "no-such-ref"])
    out = capsys.readouterr().out
    assert "⏭️ skipped" in out and "regression gates skipped" in out
