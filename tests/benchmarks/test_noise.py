"""make noise's pooling: the runs of an earlier measurement (another machine) join the spread
that the gates read. The training runs themselves are covered by the pipeline test."""

from __future__ import annotations

import json
import statistics

import pytest

from benchmarks import noise
from llmops.evaluate.stats import training_noise


def measurement(machine: str, commit: str, accuracy: list[float], examples: int = 50) -> dict:
    runs = ["as is", *[f"train.seed {i}" for i in range(1, len(accuracy))]]
    return {
        "machine": machine,
        "commit": commit,
        "runs": runs,
        "test_examples": examples,
        "spread": {
            "label_accuracy": {
                "values": accuracy,
                "range": max(accuracy) - min(accuracy),
                "std": statistics.stdev(accuracy),
            },
        },
        "significant_vs_as_is": {name: [] for name in runs[1:]},
    }


def test_pooled_runs_join_the_spread_the_gates_read(tmp_path):
    here = measurement("x86_64, 2 CPUs", "b" * 40, [0.73, 0.76, 0.76])
    there = measurement("x86_64, 2 CPUs", "a" * 40, [0.80, 0.74, 0.72])
    pooled = noise.pool(here, there, "there.json")
    assert pooled["runs"] == ["as is", "train.seed 1", "train.seed 2",
                              "as is @ aaaaaaa", "train.seed 1 @ aaaaaaa",
                              "train.seed 2 @ aaaaaaa"]  # fmt: skip
    spread = pooled["spread"]["label_accuracy"]
    assert spread["values"][0] == 0.73  # this machine's own run stays first
    assert spread["std"] == pytest.approx(statistics.stdev([0.73, 0.76, 0.76, 0.80, 0.74, 0.72]))
    assert spread["std"] > here["spread"]["label_accuracy"]["std"]
    assert spread["range"] == pytest.approx(0.08)
    assert pooled["commit"] == "b" * 40 and len(pooled["machines"]) == 2
    assert "train.seed 1 @ aaaaaaa" in pooled["significant_vs_as_is"]
    # Pooled again, its own runs take its commit; the runs it had pooled keep theirs.
    third = noise.pool(measurement("m", "c" * 40, [0.7, 0.7]), pooled, "pooled.json")
    assert third["runs"][2:] == [f"{n} @ bbbbbbb" for n in here["runs"]] + pooled["runs"][3:]
    assert len(third["machines"]) == 3 and len(third["spread"]["label_accuracy"]["values"]) == 8
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(third))
    assert training_noise(path)["label_accuracy"] == third["spread"]["label_accuracy"]["std"]


def test_pooling_another_task_or_test_split_is_refused_naming_the_file(tmp_path):
    here = measurement("m", "b" * 40, [0.7, 0.8])
    other_split = measurement("m", "a" * 40, [0.7, 0.8], examples=60)
    with pytest.raises(
        SystemExit, match=r"old\.json: measured on 60 test examples, this run on 50"
    ):
        noise.pool(here, other_split, "old.json")
    other_task = measurement("m", "a" * 40, [0.7, 0.8])
    other_task["spread"] = {"topic_accuracy": other_task["spread"].pop("label_accuracy")}
    with pytest.raises(SystemExit, match=r"old\.json: no values for label_accuracy"):
        noise.pool(here, other_task, "old.json")


def test_an_unreadable_measurement_is_refused_before_any_run(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(SystemExit, match=r"none\.json: file not found"):
        noise.load_measurement(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SystemExit, match=r"broken\.json: not JSON"):
        noise.load_measurement(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match=r"wrong\.json: no spread, test_examples"):
        noise.load_measurement(wrong)
    # main() reads it before it trains anything (the data and base paths are never read).
    with pytest.raises(SystemExit, match=r"broken\.json: not JSON"):
        noise.main(["--data", "d", "--base", "b", "--out", str(tmp_path / "o.json"),
                    "--pool", str(broken)])  # fmt: skip
