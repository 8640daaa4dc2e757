"""The task declared in `task.yaml` `task`, in the form every stage uses.

    task = Task.from_params(params.task)
    task.answer_text(row)        # the JSON answer a model learns: '{"<output>": ..., ...}'
    task.parse_answer(generated) # Parsed(valid, fields, error); never raises
    task.prompt_variables(row)   # what a prompt template may use

The answer format is one JSON object whose keys are the output fields in declared order.
A template may use any input field by name and, for every label field F (input or
output), `F_values`: the list of its labels. Which fields exist, and of what kind, is read
from the declaration only; no module names a field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmops.config.params import TaskParams
from llmops.config.textnorm import dedupe_key


@dataclass(frozen=True)
class Field:
    """One declared field."""

    name: str
    kind: str  # "label" or "text"
    values: tuple[str, ...] = ()
    ordered: bool = False
    max_chars: int = 2000

    @property
    def is_label(self) -> bool:
        return self.kind == "label"

    @property
    def values_variable(self) -> str:
        """The prompt variable holding this label field's values."""
        return f"{self.name}_values"


@dataclass(frozen=True)
class Parsed:
    """What could be read from one generated answer: a value (or None) per output field."""

    valid: bool  # a JSON object with every output field as a string, labels declared ones
    fields: dict[str, str | None]
    error: str = ""


@dataclass(frozen=True)
class Task:
    """Input and output fields, in declared order."""

    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]

    @classmethod
    def from_params(cls, params: TaskParams) -> Task:
        def build(fields: Mapping) -> tuple[Field, ...]:
            return tuple(
                Field(name, f.kind, tuple(f.values or ()), f.ordered, f.max_chars)
                for name, f in fields.items()
            )

        return cls(build(params.inputs), build(params.outputs))

    @property
    def fields(self) -> tuple[Field, ...]:
        return self.inputs + self.outputs

    @property
    def labels(self) -> tuple[Field, ...]:
        """The output fields that are labels (scored by accuracy, F1, confusion)."""
        return tuple(f for f in self.outputs if f.is_label)

    @property
    def texts(self) -> tuple[Field, ...]:
        """The output fields that are free text (scored by ROUGE-L and BLEU)."""
        return tuple(f for f in self.outputs if not f.is_label)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def variables(self) -> tuple[str, ...]:
        """Every variable a prompt template may use."""
        return (
            *(f.name for f in self.inputs),
            *(f.values_variable for f in self.fields if f.is_label),
        )

    def prompt_variables(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The template variables for one row: its inputs and every label field's values."""
        out: dict[str, Any] = {f.name: row[f.name] for f in self.inputs}
        out |= {f.values_variable: list(f.values) for f in self.fields if f.is_label}
        return out

    def input_text(self, row: Mapping[str, Any]) -> str:
        """The row's input fields as one string, one per line (what dedupe compares)."""
        return "\n".join(row[f.name] for f in self.inputs)

    def input_key(self, row: Mapping[str, Any]) -> str:
        """Under which two rows have the same input (case and whitespace ignored): prep's
        dedupe and split, eval's examples and training's groups of references."""
        return dedupe_key(self.input_text(row))

    def answer(self, row: Mapping[str, Any]) -> dict[str, str]:
        """The output fields of a row, in declared order."""
        return {f.name: row[f.name] for f in self.outputs}

    def answer_text(self, row: Mapping[str, Any]) -> str:
        """The target text a model learns to produce: one JSON object, keys in fixed order."""
        return json.dumps(self.answer(row), ensure_ascii=False)

    def parse_answer(self, text: str) -> Parsed:
        """Parse a generated answer; a parse failure is a result (scored), never an error."""
        names = [f.name for f in self.outputs]
        empty = dict.fromkeys(names)
        try:
            value = json.loads(text.strip())
        except (ValueError, RecursionError) as err:
            return Parsed(False, empty, f"not JSON: {err}")
        if not isinstance(value, dict):
            return Parsed(False, empty, f"not a JSON object: {type(value).__name__}")
        fields = {k: value[k] if isinstance(value.get(k), str) else None for k in names}
        missing = [k for k, v in fields.items() if v is None]
        # A label the task does not declare is no answer: never passed on as a valid one.
        undeclared = [f.name for f in self.labels if fields[f.name] not in (None, *f.values)]
        for name in undeclared:
            fields[name] = None
        errors = [f"missing or non-string: {', '.join(missing)}"] if missing else []
        errors += [f"not a declared label: {', '.join(undeclared)}"] if undeclared else []
        return Parsed(not errors, fields, "; ".join(errors))
