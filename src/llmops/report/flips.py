"""The report's flipped examples: test examples right on one side and wrong on the other.

Both sides come from the per-example records in git (metrics/eval_examples.csv, at the
baseline ref and in the working tree), so the section is filled without any DVC remote.
Right means every label output field right (the exact match for a task without labels).
Each listed example shows this change's inputs, reference (and, for a text field with
several, its other references) and output (from the working tree's predictions) and the
baseline's answer: its generated text when its predictions are in the DVC cache or remote,
else its labels from the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llmops.config.task import Task
from llmops.evaluate.predictions import Prediction
from llmops.report.escape import escape

LIMIT = 65_536  # GitHub's limit on a comment, in characters


def right(task: Task, row: dict[str, str]) -> bool:
    """Every label field right (the exact match when the task has no label field)."""
    if not task.labels:
        return float(row.get("exact_match") or 0) == 1.0
    return all(float(row.get(f"{f.name}_accuracy") or 0) == 1.0 for f in task.labels)


def flipped(task: Task, pairs: tuple[list[dict], list[dict]]) -> tuple[list, list]:
    """(wrong -> right, right -> wrong) lists of (baseline row, current row), from paired
    records (llmops.evaluate.stats.pair)."""
    both = list(zip(*pairs, strict=True))
    fixed = [(b, r) for b, r in both if not right(task, b) and right(task, r)]
    broken = [(b, r) for b, r in both if right(task, b) and not right(task, r)]
    return fixed, broken


SHOWN_REFERENCES = 3  # references of a text field listed in a cell; the rest are counted


def reference_cell(record: Prediction) -> str:
    """The reference answer and, for a text field with several, its other references."""
    cell = json.dumps(record.reference, ensure_ascii=False)
    for name, refs in record.references.items():
        others = refs[1 : 1 + SHOWN_REFERENCES]
        more = len(refs) - 1 - len(others)
        listed = " · ".join(json.dumps(r, ensure_ascii=False) for r in others)
        cell += f" · {name}, {len(refs)} references, also: {listed}"
        cell += f" (+{more} more)" if more else ""
    return cell


@dataclass(frozen=True)
class FlipSection:
    """The section's data: the flips (None with a `note` when there is no baseline record),
    this change's predictions and, when the DVC remote had them, the baseline's outputs."""

    task: Task
    flips: tuple[list, list] | None
    note: str
    current: dict[str, Prediction]
    baseline_outputs: dict[str, str] | None
    asked: int

    def lines(self, shown: int) -> list[str]:
        """The section with `shown` examples per direction (a note says when fewer)."""
        what = " and ".join(f.name for f in self.task.labels) or "the whole answer"
        out = [f"### Examples that flipped ({what} right vs not)", ""]
        if self.flips is None:
            return [*out, f"_{self.note}_", ""]
        if self.note:
            out += [f"_{self.note}_", ""]
        if shown < self.asked:
            out += [
                f"_Lists cut to {shown} per direction to stay under GitHub's "
                f"{LIMIT:,}-character comment limit._",
                "",
            ]
        fixed, broken = self.flips
        return [
            *out,
            f"**Wrong → right: {len(fixed)}**",
            "",
            self.table(fixed, shown),
            "",
            f"**Right → wrong: {len(broken)}**",
            "",
            self.table(broken, shown),
            "",
        ]

    def table(self, pairs: list[tuple[dict, dict]], limit: int) -> str:
        if not pairs:
            return "_None._"
        lines = ["| id | input | reference | main | this change |", "|---|---|---|---|---|"]
        for old, new in pairs[:limit]:
            record = self.current[new["id"]]
            inputs = " · ".join(f"{k}: {v}" for k, v in record.inputs.items())
            cells = [
                record.id,
                inputs,
                reference_cell(record),
                self.baseline_answer(old),
                record.tuned.output,
            ]
            lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
        if len(pairs) > limit:
            lines.append(f"\n_{len(pairs) - limit} more not shown._")
        return "\n".join(lines)

    def baseline_answer(self, row: dict[str, str]) -> str:
        """The baseline's generated text, else its labels from the record."""
        if self.baseline_outputs and row["id"] in self.baseline_outputs:
            return self.baseline_outputs[row["id"]]
        return json.dumps({f.name: row.get(f"{f.name}_answer") or None for f in self.task.labels})
