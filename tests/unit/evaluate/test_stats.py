"""Paired comparisons against hand-computed cases: identical runs show no change, one flipped
example among many is noise, a large systematic drop is significant; macro-F1 from the
records equals the metric's own definition."""

from __future__ import annotations

import random

import pytest

from llmops.config.params import FieldParams, TaskParams
from llmops.config.task import Task
from llmops.evaluate.metrics import macro_f1
from llmops.evaluate.stats import comparable, compare, pair

TASK = Task.from_params(
    TaskParams(
        "p.jinja",
        {"text": FieldParams("text")},
        {"label": FieldParams("label", ("a", "b", "c")), "note": FieldParams("text")},
    )
)


def rows(accuracy: float, n: int = 400, seed: int = 0) -> list[dict]:
    """Per-example records of a run that gets `accuracy` of the labels right."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        truth = "abc"[i % 3]
        ok = rng.random() < accuracy
        answer = truth if ok else "abc"[(i + 1) % 3]
        out.append({
            "id": f"E{i}", "reference": f"r{i}", "json_valid": "1", "label_accuracy": str(float(ok)),
            "label_valid_label": "1", "note_rouge_l": "0.5", "exact_match": "0",
            "label_answer": answer, "label_reference": truth,
        })  # fmt: skip
    return out


def flip(row: dict) -> dict:
    right = row["label_accuracy"] == "1.0"
    wrong = "abc"[("abc".index(row["label_reference"]) + 1) % 3]
    return row | {"label_accuracy": "0.0" if right else "1.0",
                  "label_answer": wrong if right else row["label_reference"]}  # fmt: skip


def test_identical_runs_show_no_change():
    base = rows(0.8)
    for metric in ("label_accuracy", "label_macro_f1", "note_rouge_l"):
        change = compare(metric, pair(base, [dict(r) for r in base]), TASK, 0.95)
        assert (change.delta, change.low, change.high, change.p_worse) == (0, 0, 0, 1.0)
        assert not change.significant and change.n == 400


def test_one_flipped_example_among_many_is_noise():
    base = rows(0.8)
    new = [flip(base[0]) if i == 0 else dict(r) for i, r in enumerate(base)]
    change = compare("label_accuracy", pair(base, new), TASK, 0.95)
    assert change.delta == pytest.approx(
        -1 / 400 if base[0]["label_accuracy"] == "1.0" else 1 / 400
    )
    assert not change.significant and change.p_worse > 0.4


def test_a_large_systematic_drop_is_significant():
    base = rows(0.8)
    new = [flip(r) if r["label_accuracy"] == "1.0" and i % 4 == 0 else dict(r)
           for i, r in enumerate(base)]  # fmt: skip
    for metric in ("label_accuracy", "label_macro_f1"):
        change = compare(metric, pair(base, new), TASK, 0.95)
        assert change.delta < -0.15 and change.high < 0 and change.worse
        assert change.significant and change.p_worse < 0.001
    gain = compare("label_accuracy", pair(new, base), TASK, 0.95)
    assert gain.significant and not gain.worse and gain.p_worse > 0.99


def test_macro_f1_from_records_is_the_metrics_definition():
    base, new = rows(0.7, seed=1), rows(0.5, seed=2)
    change = compare("label_macro_f1", pair(base, new), TASK, 0.95)
    for side, value in ((base, change.old), (new, change.new)):
        expected = macro_f1([r["label_reference"] for r in side],
                            [r["label_answer"] for r in side], ("a", "b", "c"))  # fmt: skip
        assert value == pytest.approx(expected)


def test_examples_pair_by_id_and_reference_only():
    base = rows(0.8, n=10)
    new = [dict(r) for r in base[2:]] + [{**base[0], "id": "other"}]
    new[0] = {**new[0], "reference": "changed"}  # same id, another reference: not paired
    old, now = pair(base, new)
    assert [r["id"] for r in now] == [f"E{i}" for i in range(3, 10)]
    assert [r["id"] for r in old] == [r["id"] for r in now]


def test_metrics_without_per_example_scores_are_not_compared():
    assert "note_bleu" not in comparable(TASK) and "test_loss" not in comparable(TASK)
    assert "note_chrf" not in comparable(TASK) and "note_rouge_l" in comparable(TASK)
    assert compare("note_chrf", pair(rows(0.8), rows(0.8)), TASK, 0.95) is None
    assert compare("note_bleu", pair(rows(0.8), rows(0.8)), TASK, 0.95) is None
    assert compare("label_accuracy", ([], []), TASK, 0.95) is None


def test_measured_training_noise_widens_the_interval(tmp_path):
    from llmops.evaluate.stats import training_noise

    base = rows(0.8)
    new = [flip(r) if r["label_accuracy"] == "1.0" and i % 10 == 0 else dict(r)
           for i, r in enumerate(base)]  # fmt: skip
    alone = compare("label_accuracy", pair(base, new), TASK, 0.95)
    noisy = compare("label_accuracy", pair(base, new), TASK, 0.95, run_std=0.05)
    assert alone.significant and not noisy.significant  # about -0.08: real, or training noise
    assert noisy.delta == alone.delta and noisy.run_std == 0.05
    # z = delta / sqrt(se^2 + 2 * 0.05^2); the interval is delta -+ 1.96 * that scale
    scale = (noisy.high - noisy.low) / (2 * 1.959964)
    assert scale > 0.05 * 2**0.5 and noisy.p_worse > 0.05
    path = tmp_path / "noise.json"
    path.write_text('{"spread": {"label_accuracy": {"values": [0.8, 0.7], "std": 0.0707}}}')
    assert training_noise(path) == {"label_accuracy": 0.0707}
    assert training_noise(tmp_path / "absent.json") == {}
    path.write_text("[]")
    with pytest.raises(ValueError, match=r"noise.json: not a noise measurement"):
        training_noise(path)
