"""make exp-table: DVC's experiment listing as a table of changed params, metrics, minutes."""

from __future__ import annotations

from benchmarks.experiments import table


def run(name: str, lr: float, accuracy: float, seconds: float, rev: str) -> dict:
    return {
        "rev": rev, "name": name,
        "data": {
            "params": {"params.yaml": {"data": {"train": {"learning_rate": lr, "epochs": 3}}}},
            "metrics": {
                "metrics/eval.json": {"data": {
                    "tuned": {"json_valid": 1.0, "label_accuracy": accuracy, "test_loss": 0.2},
                    "classical": {"label_accuracy": 0.9},
                }},
                "metrics/base.json": {"data": {"pretrain_seconds": 60.0}},
                "metrics/train.json": {"data": {"train_seconds": seconds}},
            },
        },
    }  # fmt: skip


def test_each_experiment_is_a_row_of_its_changed_params_metrics_and_minutes():
    shown = [{"rev": "workspace", "data": {}},
             {**run("main", 0.003, 0.5, 60.0, "a" * 40),
              "experiments": [{"revs": [run("lr6e-3", 0.006, 0.75, 120.0, "b" * 40)]},
                              {"revs": [{"rev": "c" * 40, "name": "queued", "data": {
                                  "params": {"params.yaml": {"data": {}}}, "metrics": {}}}]}]}]  # fmt: skip
    lines = table(shown).splitlines()
    assert (
        lines[0]
        == "| experiment | params changed | json_valid | label_accuracy | pretrain + train min |"
    )
    assert lines[2] == "| classical floor | (TF-IDF + logistic regression) | — | 0.900 | |"
    assert lines[3] == "| main | (baseline) | 1.000 | 0.500 | 2.0 |"
    assert lines[4] == "| lr6e-3 | train.learning_rate=0.006 | 1.000 | 0.750 | 3.0 |"
    assert len(lines) == 5  # the queued experiment has no results yet
