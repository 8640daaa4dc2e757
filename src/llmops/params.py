"""Typed, frozen view of `params.yaml`: one dataclass per section, validated on load.

Every knob lives in `params.yaml` (with its comment); this module only says what each knob
must look like. Loading fails at once on an unknown key, a missing key, a wrong type or a
value out of range, naming the file, the dotted key and what was expected, e.g.

    params.yaml: prep.val_fraction: expected a float in (0, 0.5), got "0.1x"

Booleans and numbers are read as DVC reads them, as YAML 1.2 does (`3e-4` is a float, `on`
a string); `<<` merges work, and a key written after a merge overrides the merged one. Two
equal keys, a file that is not UTF-8, and `.nan` or `.inf` where a number goes are errors
too (`llmops.paramsfile` reads the file; the report's params diff and profiles read with
it as well).

A key whose field has a default may be left out. This module imports no other module of
the library but `llmops.paramsfile` and its `llmops.textcodec` (it is the leaf everything
else builds on); checks that need another module, such as gate names against the metrics
a task has, live in that module.

Check a file by hand: python -m llmops.params params.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from llmops.paramsfile import ParamsError, read_text, read_yaml

__all__ = ["ParamsError", "load_params", "parse"]  # ParamsError lives with the file reading


@dataclass(frozen=True)
class Range:
    """Allowed interval for a number; open ends exclude the bound."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        above = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        below = self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)
        return above and below

    def describe(self) -> str:
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"in {left}{self.lo:g}, {self.hi:g}{right}"


@dataclass(frozen=True)
class NonEmpty:
    """A list or string that must not be empty (lists: nor hold duplicates)."""


Fraction = Annotated[float, Range(0.0, 1.0)]
Label = Annotated[str, NonEmpty()]
# The PII kinds llmops.redact knows (it builds its placeholders from this list).
PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN"]
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys every prepared row has besides the task's fields, so no field may take these names.
RESERVED = ("id", "source", "split")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FieldParams:
    """One field of the task: a label (one of `values`) or free text."""

    kind: Literal["label", "text"]
    values: Annotated[tuple[Label, ...], NonEmpty()] | None = None  # labels only
    ordered: bool = False  # labels only: `values` run from lowest to highest
    max_chars: Annotated[int, Range(1, 1_000_000)] = 2000  # text only: longest value kept

    def validate(self) -> None:
        if self.kind == "label" and (self.values is None or len(self.values) < 2):
            raise ValueError("a label field needs `values`: a list of 2 or more labels")
        if self.kind == "text" and (self.values is not None or self.ordered):
            raise ValueError("a text field takes no `values` or `ordered` (those are for labels)")


Fields = Annotated[dict[str, FieldParams], NonEmpty()]


@dataclass(frozen=True)
class TaskParams:
    """The task: its prompt template, the input fields and the answer's output fields."""

    prompt: Annotated[str, NonEmpty()]  # the template's path, read by dvc.yaml too
    inputs: Fields
    outputs: Fields

    def validate(self) -> None:
        for name in [*self.inputs, *self.outputs]:
            if not FIELD_NAME.fullmatch(name):
                raise ValueError(f"field name {name!r}: expected letters, digits and _")
            if name in RESERVED:
                raise ValueError(f"field name {name!r} is reserved ({', '.join(RESERVED)})")
        both = sorted(set(self.inputs) & set(self.outputs))
        if both:
            raise ValueError(f"{both} declared as both input and output")
        fields = {**self.inputs, **self.outputs}
        taken = sorted(f"{n}_values" for n, f in fields.items() if f.kind == "label")
        clash = sorted(set(taken) & set(fields))
        if clash:  # a template sees label F's values as the variable F_values
            raise ValueError(f"field name {clash[0]!r} clashes with a label field's values")


@dataclass(frozen=True)
class PrepParams:
    """Knobs of the `prep` stage: reading the raw files, cleaning, redaction, the split."""

    # Raw column of a task field, for fields whose column has another name.
    columns: dict[str, Annotated[str, NonEmpty()]]
    id_column: Annotated[str, NonEmpty()] | None
    split_column: Annotated[str, NonEmpty()] | None
    # Split -> glob patterns of raw files (relative to the raw folder) pinned whole.
    pin_files: dict[Literal[SPLITS], tuple[Annotated[str, NonEmpty()], ...]]  # type: ignore[valid-type]
    seed: Annotated[int, Range(0)]
    val_fraction: Annotated[float, Range(0.0, 0.5, lo_open=True, hi_open=True)]
    test_fraction: Annotated[float, Range(0.0, 0.5, hi_open=True)]
    unicode_form: Literal["NFC", "NFKC"]
    redact: tuple[PiiKind, ...]
    max_rejected_fraction: Fraction
    report_examples: Annotated[int, Range(0, 100)]


Positive = Annotated[int, Range(1)]


@dataclass(frozen=True)
class TinyParams:
    """Recipe of the offline `tiny` base model: tokenizer, Llama shape, pretraining run."""

    vocab_size: Annotated[int, Range(260, 65_536)]
    hidden_size: Annotated[int, Range(16, 4096)]
    layers: Annotated[int, Range(1, 64)]
    heads: Annotated[int, Range(1, 64)]
    intermediate_size: Annotated[int, Range(16, 16_384)]
    context_length: Annotated[int, Range(64, 8192)]
    block_length: Annotated[int, Range(16, 8192)]
    batch_size: Positive
    steps: Positive
    learning_rate: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    warmup_steps: Annotated[int, Range(0)]
    seed: Annotated[int, Range(0)]


@dataclass(frozen=True)
class BaseParams:
    """Knobs of the `base` stage: which base model to materialise in models/base/."""

    model: Annotated[str, NonEmpty()]
    revision: str | None
    trust_remote_code: bool
    tiny: TinyParams


@dataclass(frozen=True)
class LoraParams:
    """The LoRA adapter's shape (peft LoraConfig)."""

    r: Annotated[int, Range(1, 1024)]
    alpha: Annotated[float, Range(0.0, lo_open=True)]
    dropout: Annotated[float, Range(0.0, 1.0, hi_open=True)]
    target_modules: Annotated[tuple[Label, ...], NonEmpty()]
    # Modules trained in full and saved with the adapter (peft modules_to_save), e.g. the
    # input embeddings of a small model; empty: the adapter alone is trained.
    modules_to_save: tuple[Label, ...] = ()

    def validate(self) -> None:
        both = sorted(set(self.target_modules) & set(self.modules_to_save))
        if both:
            raise ValueError(
                f"{both} is in both target_modules and modules_to_save; a module gets a "
                "LoRA adapter or is trained in full, not both"
            )


@dataclass(frozen=True)
class TrainParams:
    """Knobs of the `train` stage (LoRA fine-tuning, checkpoints, logging)."""

    seed: Annotated[int, Range(0)]
    lora: LoraParams
    learning_rate: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    schedule: Literal["cosine", "linear", "constant"]
    warmup_steps: Annotated[int, Range(0)]
    weight_decay: Annotated[float, Range(0.0, 1.0)]
    token_dropout: Annotated[float, Range(0.0, 1.0, hi_open=True)]
    epochs: Positive
    max_steps: Annotated[int, Range(1)] | None
    batch_size: Positive
    grad_accum: Positive
    max_length: Annotated[int, Range(8, 131_072)]
    max_grad_norm: Annotated[float, Range(0.0, lo_open=True)]
    precision: Literal["auto", "fp32", "bf16"]
    eval_every: Positive
    checkpoint_every: Positive
    log_every: Positive


@dataclass(frozen=True)
class DecodingParams:
    """How answers are generated, by the eval stage and the service alike."""

    max_new_tokens: Annotated[int, Range(1, 8192)]
    do_sample: bool
    temperature: Annotated[float, Range(0.0, lo_open=True)]
    top_p: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    seed: Annotated[int, Range(0)]


@dataclass(frozen=True)
class ClassicalParams:
    """The classical baseline: TF-IDF features and a logistic regression per label field."""

    analyzer: Literal["word", "char_wb"]
    ngram_min: Annotated[int, Range(1, 10)]
    ngram_max: Annotated[int, Range(1, 10)]
    C: Annotated[float, Range(0.0, lo_open=True)]

    def validate(self) -> None:
        if self.ngram_min > self.ngram_max:
            raise ValueError("ngram_min must not exceed ngram_max")


@dataclass(frozen=True)
class EvalParams:
    """Knobs of the `eval` stage."""

    batch_size: Positive
    classical: ClassicalParams


@dataclass(frozen=True)
class GateParams:
    """Quality gates on the fine-tuned model's test metrics (names: llmops.metrics)."""

    min: dict[str, float]
    max_drop: dict[str, Annotated[float, Range(0.0)]]
    # A regression gate fails only when the paired test says the baseline is better at this
    # confidence (and the drop exceeds max_drop); it is also the reports' interval level.
    confidence: Annotated[float, Range(0.5, 1.0, hi_open=True)]

    def validate(self) -> None:
        for kind, table in (("min", self.min), ("max_drop", self.max_drop)):
            for name in table:
                if not FIELD_NAME.fullmatch(name):
                    raise ValueError(f"{kind} key {name!r}: expected a metric name")


@dataclass(frozen=True)
class ReportParams:
    """The pull-request report."""

    examples: Annotated[int, Range(0, 100)]


# A BentoML model or Bento name: lowercase letters, digits, - _ and . (BentoML's tag rule).
BENTO_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True)
class ServeParams:
    """The inference service (make bento, make serve; llmops.serving, service.py)."""

    name: Annotated[str, NonEmpty()]  # model and Bento name in the BentoML stores
    merge: bool  # serve base + adapter merged into one model
    max_batch_size: Annotated[int, Range(2, 1024)]  # adaptive batching: most prompts per batch
    max_latency_ms: Annotated[int, Range(1, 600_000)]  # adaptive batching: latency bound
    max_items: Annotated[int, Range(1, 1024)]  # inputs per task request
    max_tokens: Annotated[int, Range(1, 8192)]  # most tokens a request may ask to generate
    max_queue: Annotated[int, Range(1, 100_000)]  # requests in flight before 503
    retry_after_s: Annotated[int, Range(1, 3600)]  # Retry-After of a 503
    api_key_env: Annotated[str, NonEmpty()]  # environment variable holding the API key

    def validate(self) -> None:
        if not BENTO_NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r}: expected lowercase letters, digits, - _ .")
        if not ENV_NAME.fullmatch(self.api_key_env):
            raise ValueError(f"api_key_env {self.api_key_env!r}: expected A-Z, 0-9 and _")


@dataclass(frozen=True)
class Params:
    """The whole `params.yaml`."""

    task: TaskParams
    prep: PrepParams
    base: BaseParams
    train: TrainParams
    decoding: DecodingParams
    eval: EvalParams
    gate: GateParams
    report: ReportParams
    serve: ServeParams

    def validate(self) -> None:
        fields = [*self.task.inputs, *self.task.outputs]
        unknown = sorted(set(self.prep.columns) - set(fields))
        if unknown:
            raise ValueError(
                f"prep.columns names {unknown}, which are not task fields; expected some of "
                f"{fields}"
            )
        if self.serve.max_tokens < self.decoding.max_new_tokens:
            raise ValueError(
                f"serve.max_tokens ({self.serve.max_tokens}) is below decoding.max_new_tokens "
                f"({self.decoding.max_new_tokens}): the service could not answer as eval did"
            )


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate a params file; raise ParamsError naming file and key."""
    raw = read_yaml(read_text(path), str(path))
    return parse(Params, raw, where=str(path))


def parse(cls: type, raw: Any, where: str, key: str = "") -> Any:
    """Build dataclass `cls` from plain YAML data, checking every field."""
    if not isinstance(raw, dict):
        raise _error(where, key, "a mapping of keys", raw)
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for unknown in sorted(set(raw) - set(names), key=str):
        close = difflib.get_close_matches(str(unknown), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        expected = f"one of the known keys: {', '.join(names)}{hint}"
        raise ParamsError(f"{where}: {_join(key, unknown)}: unknown key; expected {expected}")
    values = {}
    for field in dataclasses.fields(cls):
        sub = _join(key, field.name)
        if field.name in raw:
            values[field.name] = _convert(hints[field.name], raw[field.name], where, sub)
        elif field.default is dataclasses.MISSING:
            raise ParamsError(f"{where}: {sub}: missing; expected {_describe(hints[field.name])}")
    out = cls(**values)
    try:
        if hasattr(out, "validate"):  # checks across keys, e.g. a label field needs values
            out.validate()
    except ValueError as err:
        raise ParamsError(f"{where}: {key + ': ' if key else ''}{err}") from None
    return out


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    base, checks = _unwrap(hint)
    origin = typing.get_origin(base)
    if dataclasses.is_dataclass(base):
        return parse(base, value, where, key)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(base)
        if value is None and type(None) in options:
            return None
        inner = next(a for a in options if a is not type(None))
        return _convert(inner, value, where, key)
    if origin is Literal:
        if value not in typing.get_args(base):
            raise _error(where, key, _describe(hint), value)
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise _error(where, key, _describe(hint), value)
        key_type, value_type = typing.get_args(base)
        out = {
            _convert(key_type, k, where, f"{key} key"): _convert(
                value_type, v, where, _join(key, k)
            )
            for k, v in value.items()
        }
        _check(checks, out, hint, where, key, value)
        return out
    if origin is tuple:
        if not isinstance(value, list):
            raise _error(where, key, _describe(hint), value)
        item = typing.get_args(base)[0]
        out = tuple(_convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value))
        _check(checks, out, hint, where, key, value)
        return out
    if not _is_type(base, value):
        raise _error(where, key, _describe(hint), value)
    out = _float(value) if base is float else value
    if base is float and not math.isfinite(out):  # .nan, .inf: no knob or gate means that
        raise _error(where, key, "a finite " + _describe(hint).removeprefix("a "), value)
    _check(checks, out, hint, where, key, value)
    return out


def _check(checks: list, value: Any, hint: Any, where: str, key: str, raw: Any) -> None:
    for check in checks:
        if isinstance(check, Range) and not check.contains(value):
            raise _error(where, key, _describe(hint), raw)
        duplicates = isinstance(value, tuple) and len(set(value)) != len(value)  # dict: never
        if isinstance(check, NonEmpty) and (len(value) == 0 or duplicates):
            raise _error(where, key, _describe(hint), raw)


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        return math.inf


def _is_type(base: type, value: Any) -> bool:
    if base is float:  # YAML writes 1 for 1.0; bool is an int subclass and never a number here
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _unwrap(hint: Any) -> tuple[Any, list]:
    if typing.get_origin(hint) is Annotated:
        base, *checks = typing.get_args(hint)
        return base, checks
    return hint, []


def _describe(hint: Any) -> str:
    base, checks = _unwrap(hint)
    origin = typing.get_origin(base)
    if dataclasses.is_dataclass(base):
        return "a mapping of keys"
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(base))
    if origin in (types.UnionType, typing.Union):
        inner = next(a for a in typing.get_args(base) if a is not type(None))
        return f"{_describe(inner)} or null"
    if origin is dict:
        key_type, value_type = typing.get_args(base)
        text = f"a mapping from {_describe(key_type)} to {_describe(value_type)}"
    elif origin is tuple:
        item = _describe(typing.get_args(base)[0])
        if item.startswith("one of "):
            text = "a list of values from: " + item.removeprefix("one of ")
        else:
            text = f"a list of {item.removeprefix('a ')}s"
    else:
        text = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}[base]
    for check in checks:
        if isinstance(check, Range):
            text += " " + check.describe()
        elif isinstance(check, NonEmpty):
            text = "a non-empty " + text.removeprefix("a ").removeprefix("an ")
            text += ", without duplicates" if origin is tuple else ""
    return text


def _error(where: str, key: str, expected: str, got: Any) -> ParamsError:
    return ParamsError(f"{where}: {key or '(top level)'}: expected {expected}, got {_show(got)}")


def _show(value: Any, limit: int = 200) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[str(value)]  # as YAML writes them
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):  # a circular alias, a huge integer
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "…"


def _join(prefix: str, name: Any) -> str:
    name = name if isinstance(name, str) and name.isprintable() else repr(name)
    return f"{prefix}.{name}" if prefix else name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.path)
    except ParamsError as err:
        raise SystemExit(str(err)) from None
    print(f"{args.path}: ok ({', '.join(f.name for f in dataclasses.fields(params))})")


if __name__ == "__main__":
    main()
