"""Prepared rows as model inputs: prompt tokens, answer tokens and the answer-only label mask.

The prompt comes from `llmops.prompts.render_prompt` and the target from `render_answer`,
the same functions eval and the service use. The prompt and the answer are tokenized
separately and concatenated, exactly as generation sees them (prompt ids, then generated
ids), and the answer ends with the tokenizer's end-of-sequence token so the model learns
to stop. Labels are -100 on prompt tokens: the loss covers the answer only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmops.params import TaskParams
from llmops.prompts import PromptTemplate, render_answer, render_prompt

IGNORE = -100  # label value that torch's cross-entropy skips


class DataError(ValueError):
    """A split file that is missing, empty or malformed; the message names file and line."""


@dataclass(frozen=True)
class Example:
    """One tokenized training example."""

    id: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

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


def prompt_text(template: PromptTemplate, task: TaskParams, message: str) -> str:
    """The prompt for one message, as every stage and the service render it."""
    return render_prompt(
        template,
        message=message,
        categories=list(task.categories),
        priorities=list(task.priorities),
    )


def answer_text(row: dict) -> str:
    """The reference answer of a prepared row."""
    return render_answer(row["category"], row["priority"], row["reply"])


def encode(tokenizer, prompt: str, answer: str, example_id: str = "") -> Example:
    """Token ids of prompt + answer + EOS, with labels masking the prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    return Example(
        id=example_id,
        input_ids=tuple(prompt_ids + answer_ids),
        labels=tuple([IGNORE] * len(prompt_ids) + answer_ids),
    )


def encode_split(
    path: Path, tokenizer, template: PromptTemplate, task: TaskParams, max_length: int
) -> list[Example]:
    """Every row of a split, tokenized; fails naming the row if one exceeds `max_length`."""
    examples = []
    for row in read_split(path):
        for key in ("id", "message", "category", "priority", "reply"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{path}: row {row.get('id', '?')}: field {key!r} missing")
        prompt = prompt_text(template, task, row["message"])
        example = encode(tokenizer, prompt, answer_text(row), row["id"])
        if len(example.input_ids) > max_length:
            raise DataError(
                f"{path}: example {row['id']} is {len(example.input_ids)} tokens "
                f"(prompt {len(example.input_ids) - example.answer_tokens} + answer "
                f"{example.answer_tokens}) but train.max_length is {max_length}; raise it "
                f"(nothing is truncated, so a cut answer is never learned)"
            )
        examples.append(example)
    return examples
