"""Drift of the served model's inputs and answers against the training data, by Evidently
(`llmops.watch.monitor` reports it).

    figures, snapshot = drift(task, params.monitor, training_rows, answered_rows)

Columns come from the task declaration: per input text field F its text (Evidently's text
drift), `F.chars` (length), `F.oov` (share of words no training input holds; training rows
are scored leave-one-out, else the training side would always be 0), `F.non_latin` (share of
letters outside the Latin script) and `F.pii` (holds a redaction placeholder); per label
field its value, predicted against the training label (a value the task does not declare
counts as none; a column with no value in the window is left out, and named). Both sides are
sampled to SAMPLE_ROWS with a fixed seed. Evidently's DataDriftPreset picks each column's
test; its verdict is the share of drifting columns against `monitor.drift_share` (drifted
when the share is at least it).
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
import warnings
from collections import Counter
from typing import Any

from llmops.config.params import MonitorParams
from llmops.config.task import Task
from llmops.data.redact import PLACEHOLDERS

SAMPLE_ROWS = 2000  # rows per side given to Evidently: its text drift fits a classifier per
SEED = 0  # text column, minutes on large frames; the sample is seeded, so runs repeat
PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS.values())))
WORD = re.compile(r"[^\W\d_]+")  # letters only: numbers (order ids) are never "seen"


def column_kinds(task: Task) -> dict[str, str]:
    """The drift columns and their Evidently kinds (text, numerical, categorical)."""
    kinds: dict[str, str] = {}
    for f in task.inputs:
        if not f.is_label:
            kinds[f.name] = "text"
            kinds |= {f"{f.name}.{k}": "numerical" for k in ("chars", "oov", "non_latin")}
            kinds[f"{f.name}.pii"] = "categorical"
    return kinds | {f.name: "categorical" for f in task.fields if f.is_label}


def columns(task: Task, rows: list[dict], seen: Counter, reference: bool) -> dict[str, list]:
    """The drift columns of `rows`. `seen` counts the training inputs holding each word;
    a training row's own words count once there, so its OOV share is leave-one-out."""
    out: dict[str, list] = {}
    for f in task.inputs:
        if not f.is_label:
            values = [row[f.name] for row in rows]
            words = [set(WORD.findall(v.casefold())) for v in values]
            out[f.name] = values
            out[f"{f.name}.chars"] = [len(v) for v in values]
            unseen = [sum(seen[w] <= reference for w in ws) for ws in words]
            out[f"{f.name}.oov"] = [
                share(n, len(ws)) or 0.0 for n, ws in zip(unseen, words, strict=True)
            ]
            out[f"{f.name}.non_latin"] = [_non_latin(v) for v in values]
            out[f"{f.name}.pii"] = [int(bool(PLACEHOLDER.search(v))) for v in values]
    for f in task.fields:
        if f.is_label:  # a value the task does not declare counts as none
            out[f.name] = [row.get(f.name) if row.get(f.name) in f.values else None for row in rows]
    return out


def _non_latin(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    latin = sum(unicodedata.name(c, "").startswith("LATIN") for c in letters)
    return share(len(letters) - latin, len(letters)) or 0.0


def drift(task: Task, params: MonitorParams, train: list[dict], rows: list[dict]) -> tuple:
    """(figures, Evidently snapshot) of the answered `rows` against the training rows."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    texts = [f.name for f in task.inputs if not f.is_label]
    seen = Counter(
        w for r in train for name in texts for w in set(WORD.findall(r[name].casefold()))
    )
    rng = random.Random(SEED)
    reference = columns(task, _sample(rng, train), seen, True)
    current = columns(task, _sample(rng, rows), seen, False)
    kinds = column_kinds(task)
    left_out = [name for name, values in current.items() if all(v is None for v in values)]
    named = [name for name in kinds if name not in left_out]
    definition = DataDefinition(
        **{
            f"{kind}_columns": [n for n in named if kinds[n] == kind]
            for kind in set(kinds.values())
        }
    )
    current_data, reference_data = (
        Dataset.from_pandas(pd.DataFrame({n: side[n] for n in named}), data_definition=definition)
        for side in (current, reference)
    )
    report = Report([DataDriftPreset(drift_share=params.drift_share)], include_tests=True)
    with warnings.catch_warnings():  # numpy warns on a constant column (all Latin, say)
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(current_data, reference_data)
    figures = _drift_figures(snapshot.dict())
    figures["left_out"] = {name: "no value in the window" for name in left_out}
    figures["means"] = {
        n: {"current": _mean(current[n]), "reference": _mean(reference[n])}
        for n in named
        if kinds[n] == "numerical" or n.endswith(".pii")
    }
    return figures, snapshot


def _sample(rng: random.Random, rows: list[dict]) -> list[dict]:
    return rng.sample(rows, SAMPLE_ROWS) if len(rows) > SAMPLE_ROWS else rows


def _mean(values: list) -> float | None:
    return share(sum(values), len(values))


def _drift_figures(result: dict) -> dict:
    """Evidently's per-column scores, methods and verdicts, and the share that drifted."""
    scores = {m["id"]: m["value"] for m in result["metrics"]}
    out: dict[str, Any] = {"columns": {}}
    for test in result["tests"]:
        config = test["metric_config"]["params"]
        status = str(getattr(test["status"], "value", test["status"]))
        if config["type"].endswith("ValueDrift"):
            out["columns"][config["column"]] = {
                "score": finite(scores[test["metric_config"]["metric_id"]]),
                "method": config["method"],
                "threshold": config["threshold"],
                "drifted": status in ("FAIL", "WARNING"),
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            value = scores[test["metric_config"]["metric_id"]]
            out |= {"drifted": int(value["count"]), "share": value["share"]}
            out["verdict"] = status in ("FAIL", "WARNING")
    out["columns_total"] = len(out["columns"])
    return out


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def finite(value: Any) -> float | None:
    """A score as JSON can hold it: NaN (a test on constant columns) becomes null."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
