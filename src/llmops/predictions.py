"""Per-example predictions: one typed record per test example, written by eval, read by report.

The eval stage writes `data/eval/predictions.jsonl` (one JSON object per line): the
example's id, its input fields, the reference output fields and, for the base model and the
fine-tuned one, the generated text, the parsed fields, whether it parsed, and the
per-example scores (`llmops.metrics.score_example`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


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

    @classmethod
    def from_dict(cls, data: dict) -> Prediction:
        answers = {m: ModelAnswer(**data[m]) for m in ("base", "tuned")}
        return cls(data["id"], data["inputs"], data["reference"], **answers)


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
