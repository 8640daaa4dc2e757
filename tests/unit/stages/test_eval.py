"""The eval stage on a test split whose inputs have several references: one answer per input,
its text fields scored against every reference, the references in the predictions and
the report's record, the classical floor's retrieval scored the same way."""

from __future__ import annotations

import dataclasses
import json
import shutil

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.evaluate.metrics import rouge_l
from llmops.evaluate.predictions import example_rows
from llmops.model.tokenised import read_split
from llmops.stages import eval as stage


def test_an_input_with_several_references_is_one_example_scored_against_all(
    project, adapter, tmp_path
):
    data = tmp_path / "prepared"
    shutil.copytree(project / "data" / "prepared", data)
    test = read_split(data / "test.jsonl")
    extra = [  # two more references for each of the first three inputs
        {**row, "id": f"{row['id']}.{n}", "summary": f"Reference {n}: {row['summary'].lower()}"}
        for row in test[:3]
        for n in (2, 3)
    ]
    lines = [json.dumps(r) for r in test + extra]
    (data / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = load_params(project / "params.yaml")
    params = dataclasses.replace(
        params, decoding=dataclasses.replace(params.decoding, max_new_tokens=24)
    )
    results, records = stage.evaluate(params, data, project / "models" / "base", adapter)

    assert [r.id for r in records] == [r["id"] for r in test]  # one per input, in order
    for record, row in zip(records[:3], test[:3], strict=True):
        refs = record.references["summary"]
        assert refs == [
            row["summary"],
            *(f"Reference {n}: {row['summary'].lower()}" for n in (2, 3)),
        ]
        said = record.tuned.parsed.get("summary") or ""
        best = max(rouge_l(said, ref) for ref in refs)
        assert record.tuned.scores["summary_rouge_l"] == round(best, 4)
    assert all(not r.references for r in records[3:])
    mean = sum(r.tuned.scores["summary_rouge_l"] for r in records) / len(records)
    assert abs(results["tuned"]["summary_rouge_l"] - mean) < 1e-3
    for model in ("base", "tuned", "classical"):
        assert {"summary_rouge_l", "summary_bleu", "summary_chrf"} <= set(results[model])
    task = Task.from_params(params.task)
    digests = [row["reference"] for row in example_rows(task, records)]
    alone = dataclasses.replace(records[0], references={})
    assert example_rows(task, [alone])[0]["reference"] != digests[0]  # references count
