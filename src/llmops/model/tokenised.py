"""Prepared rows as model inputs: prompt tokens, answer tokens and the answer-only label mask.

The prompt comes from `llmops.config.prompts.render_prompt` and the target from
`Task.answer_text`, the same functions eval and the service use. The prompt is tokenized
by `llmops.config.prompts.prompt_ids` (the one tokenization of a prompt, for training and
generation alike) and the answer separately, then concatenated, exactly as generation sees
them (prompt ids, then generated ids); the answer ends with the tokenizer's end-of-sequence
token so the model learns to stop. Labels are -100 on prompt tokens: the loss covers the
answer only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmops.config.prompts import Prompt, PromptTemplate, prompt_ids, render_prompt
from llmops.config.task import Task

IGNORE = -100  # label value that torch's cross-entropy skips


class DataError(ValueError):
    """A split file that is missing, empty or malformed; the message names file and line."""


@dataclass(frozen=True)
class Example:
    """One tokenized training example."""

    id: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    weight: float = 1.0  # the loss weight of its answer tokens (train.label_weights)

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def read_split(path: Path) -> list[dict]:
    """Rows of a prepared split (JSONL); fails on a missing or empty file."""
    if not path.exists():
        raise DataError(f"{path}: split not found (run the prep stage: dvc repro prep)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg})") from None
    if not rows:
        raise DataError(f"{path}: split is empty; nothing to train or evaluate on")
    return rows


def check_rows(path: Path, rows: list[dict], task: Task) -> None:
    """Every prepared row has an id and every field of the task as a string."""
    for row in rows:
        for key in ("id", *(f.name for f in task.fields)):
            if not isinstance(row.get(key), str):
                raise DataError(
                    f"{path}: row {row.get('id', '?')}: field {key!r} missing; was prep run "
                    "with this task? (dvc repro prep)"
                )


def build_prompt(template: PromptTemplate, task: Task, row: dict) -> Prompt:
    """The prompt for one row (its input fields), as every stage and the service render it."""
    return render_prompt(template, task.prompt_variables(row))


def encode(tokenizer, prompt: Prompt, answer: str, example_id: str = "") -> Example:
    """Token ids of prompt + answer + EOS, with labels masking the prompt."""
    ids = prompt_ids(tokenizer, prompt)
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    return Example(
        id=example_id,
        input_ids=tuple(ids + answer_ids),
        labels=tuple([IGNORE] * len(ids) + answer_ids),
    )


def encode_rows(rows: list[dict], tokenizer, template: PromptTemplate, task: Task) -> list[Example]:
    """Every row tokenized as prompt + answer."""
    return [
        encode(tokenizer, build_prompt(template, task, r), task.answer_text(r), r["id"])
        for r in rows
    ]


def longest(examples: list[Example]) -> Example:
    """The example with the most tokens."""
    return max(examples, key=lambda e: len(e.input_ids))


def check_length(examples: list[Example], limit: int, knob: str, where: str) -> None:
    """Fail naming the example and the knob when the longest example exceeds `limit`."""
    worst = longest(examples)
    if len(worst.input_ids) > limit:
        prompt = len(worst.input_ids) - worst.answer_tokens
        raise DataError(
            f"{where}: example {worst.id} is {len(worst.input_ids)} tokens (prompt {prompt} + "
            f"answer {worst.answer_tokens}) but {knob} is {limit}; raise it or shorten the "
            "prompt (nothing is truncated, so a cut answer is never learned)"
        )


def encode_split(
    path: Path, tokenizer, template: PromptTemplate, task: Task, max_length: int
) -> list[Example]:
    """Every row of a split, tokenized; fails naming the row if one exceeds `max_length`."""
    rows = read_split(path)
    check_rows(path, rows, task)
    examples = encode_rows(rows, tokenizer, template, task)
    check_length(examples, max_length, "train.max_length", str(path))
    return examples
