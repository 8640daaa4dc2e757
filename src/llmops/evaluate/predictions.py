"""Per-example predictions: one typed record per test example, written by eval, read by report.

The eval stage writes two files:
- `data/eval/predictions.jsonl` (DVC; one JSON object per line): the example's id, its
  input fields, the reference output fields and, for the base model and the fine-tuned one,
  the generated text, the parsed fields, whether it parsed, and the per-example scores
  (`llmops.evaluate.metrics.score_example`);
- `metrics/eval_examples.csv` (git; small): per test example, the fine-tuned model's
  scores and, per label field, its answer and the reference, plus a digest of the reference
  answer. It is what paired comparisons need (`llmops.evaluate.stats`), so the gates and the report
  compare with a baseline commit from git alone, without the DVC remote; `read_record`
  reads one back, here or committed at the baseline, and names what is wrong with it.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llmops.config.task import Task
from llmops.evaluate.metrics import InputError

LABEL_COLUMNS = ("_answer", "_reference")  # a record's other columns are scores


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer to one example, and its scores."""

    output: str
    parsed: dict[str, str | None]
    valid: bool
    error: str
    scores: dict[str, float]
    new_tokens: int


@dataclass(frozen=True)
class Prediction:
    """One test example: inputs, reference, and the base and fine-tuned models' answers."""

    id: str
    inputs: dict[str, str]
    reference: dict[str, str]
    base: ModelAnswer
    tuned: ModelAnswer
    # Every reference of a text field whose input has more than one (the first is
    # `reference`'s); the others have one, `reference`'s.
    references: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Prediction:
        answers = {m: ModelAnswer(**data[m]) for m in ("base", "tuned")}
        further = data.get("references", {})
        return cls(data["id"], data["inputs"], data["reference"], **answers, references=further)


def write_predictions(path: Path, records: Iterable[Prediction]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False) + "\n")


def parse_predictions(text: str) -> list[Prediction]:
    """Records from JSON Lines text; ValueError when a line is not a prediction record."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Prediction.from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError) as err:
            problem = f"{type(err).__name__}: {err}"
            raise ValueError(f"line {n}: not a prediction record ({problem})") from None
    return out


def read_predictions(path: Path) -> list[Prediction]:
    return parse_predictions(path.read_text(encoding="utf-8"))


def example_rows(task: Task, records: Iterable[Prediction]) -> list[dict[str, str]]:
    """The compact per-example rows of the fine-tuned model (metrics/eval_examples.csv)."""
    rows = []
    for r in records:
        said = task.answer_text(r.reference)
        if r.references:  # a change to any reference changes the example
            said += json.dumps(r.references, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(said.encode()).hexdigest()[:12]
        row = {"id": r.id, "reference": digest}
        row |= {name: f"{value:g}" for name, value in r.tuned.scores.items()}
        for f in task.labels:
            row[f"{f.name}_answer"] = r.tuned.parsed.get(f.name) or ""
            row[f"{f.name}_reference"] = r.reference[f.name]
        rows.append(row)
    return rows


def write_examples(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


def parse_examples(text: str) -> list[dict[str, str]]:
    """Rows of an examples CSV; ValueError when it is not one."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if rows and not {"id", "reference"} <= set(rows[0]):
        raise ValueError("not a per-example record (no id and reference columns)")
    return rows


def read_record(text: str | None, where: str) -> list[dict[str, str]] | None:
    """The rows of a per-example record (None: no record); InputError naming `where` when
    the text is not one: not CSV, no id and reference columns, a short row, a score that is
    not a number."""
    if text is None:
        return None
    try:
        rows = parse_examples(text)
    except (ValueError, csv.Error) as err:
        raise InputError(f"{where}: {err}") from None
    for n, row in enumerate(rows, start=1):
        if None in row or None in row.values():
            raise InputError(f"{where}: row {n}: not as many cells as the header has columns")
        for column, cell in row.items():
            score = column not in ("id", "reference") and not column.endswith(LABEL_COLUMNS)
            if score and not _finite(cell):
                shown = repr(cell[:40])
                raise InputError(f"{where}: row {n}: {column}: expected a number, got {shown}")
    return rows


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
