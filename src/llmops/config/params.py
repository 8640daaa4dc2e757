"""Typed, frozen view of `params.yaml` and `task.yaml`: one dataclass per section, validated
on load. Every knob lives in `params.yaml` (with its comment); the task declaration (the
task, and the prep keys that describe the data: columns, ids, split pins, label matching)
lives in `task.yaml` beside it, which `make init` writes. Loading merges the two; a key
stated in both is an error. This module only says what each knob must look like. Loading
fails at once on an unknown key, a missing key, a wrong type or a value out of range, naming
the file, the dotted key and what was expected, e.g.

    params.yaml: prep.val_fraction: expected a float in (0, 0.5), got "0.1x"

Booleans and numbers are read as DVC reads them, as YAML 1.2 does (`3e-4` is a float, `on`
a string); `<<` merges work, and a key written after a merge overrides the merged one. Two
equal keys, a file that is not UTF-8, and `.nan` or `.inf` where a number goes are errors
too (`llmops.config.paramsfile` reads the file; the report's params diff and profiles read with
it as well).

A key whose field has a default may be left out. The checking itself is
`llmops.config.typedconfig`'s. This module imports no other module of the library but
`llmops.config.typedconfig`, `llmops.config.paramsfile` and its `llmops.config.textcodec`
(it is the leaf everything else builds on), and `llmops.config.textnorm` to check that
declared labels are in the form prep compares them in; checks that need another module, such
as gate names against the metrics a task has, live in that module.

Check a file by hand: python -m llmops.config.params params.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from llmops.config.paramsfile import ParamsError, read_text, read_yaml
from llmops.config.textnorm import label_key
from llmops.config.typedconfig import NonEmpty, Range, parse

__all__ = ["ParamsError", "load_params", "parse"]  # ParamsError lives with the file reading


Fraction = Annotated[float, Range(0.0, 1.0)]
# A seed: numpy seeds in [0, 2**32 - 1] (transformers.set_seed calls np.random.seed), torch
# in a wider range; a larger seed would pass here and stop the stage.
Seed = Annotated[int, Range(0, 2**32 - 1)]
# Steps, and intervals in steps: a billion is past any run; a larger number is a typo (and
# 2**64 overflows torch). Batch sizes (and micro-batches per step) past 65,536 likewise.
Steps = Annotated[int, Range(1, 10**9)]
BatchSize = Annotated[int, Range(1, 65_536)]
Label = Annotated[str, NonEmpty()]
# The kinds llmops.data.redact knows, PII and secrets (it builds its placeholders from this list).
PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "SECRET"]
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
        seen: dict[str, str] = {}
        for value in self.values or ():
            key = label_key(value)
            if key != value:  # what prep compares rows in; the declared form must be it
                raise ValueError(
                    f"label {value!a:.80} is not in normal form: expected {key!a:.80} (NFC, "
                    "no control or invisible characters, no surrounding or double spaces)"
                )
            if key in seen:
                raise ValueError(f"labels {seen[key]!a:.80} and {value!a:.80} are the same label")
            seen[key] = value


Fields = Annotated[dict[str, FieldParams], NonEmpty()]


@dataclass(frozen=True)
class TaskParams:
    """The task: its prompt template, the input fields and the answer's output fields."""

    prompt: Annotated[str, NonEmpty()]  # the template's path, read by dvc.yaml too
    inputs: Fields
    outputs: Fields

    def validate(self) -> None:
        path = PurePosixPath(self.prompt)
        if path.is_absolute() or ".." in path.parts or "\\" in self.prompt:
            raise ValueError(
                f"prompt {self.prompt!a:.100}: expected a relative path inside the project, "
                "e.g. prompts/task.jinja (dvc.yaml reads it too)"
            )
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
    seed: Seed
    val_fraction: Annotated[float, Range(0.0, 0.5, lo_open=True, hi_open=True)]
    test_fraction: Annotated[float, Range(0.0, 0.5, hi_open=True)]
    unicode_form: Literal["NFC", "NFKC"]
    redact: tuple[PiiKind, ...]
    max_rejected_fraction: Fraction
    report_examples: Annotated[int, Range(0, 100)]
    # exact: a row's label must be a declared value up to Unicode form, invisible
    # characters and surrounding space; fold: up to letter case too.
    label_case: Literal["exact", "fold"] = "exact"
    # Largest a raw file may be once decompressed (MB), and one row of it (KB): a larger
    # file stops prep naming it, a larger row is rejected as too_long without being parsed.
    max_file_mb: Annotated[int, Range(1, 1_000_000)] = 1024
    max_row_kb: Annotated[int, Range(1, 1_048_576)] = 1024


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
    batch_size: BatchSize
    steps: Steps
    learning_rate: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    warmup_steps: Annotated[int, Range(0, 10**9)]
    seed: Seed


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

    seed: Seed
    lora: LoraParams
    learning_rate: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    schedule: Literal["cosine", "linear", "constant"]
    warmup_steps: Annotated[int, Range(0, 10**9)]
    weight_decay: Annotated[float, Range(0.0, 1.0)]
    token_dropout: Annotated[float, Range(0.0, 1.0, hi_open=True)]
    # Several references of one input: every one an example each epoch ("all"), or one of
    # them, drawn per epoch ("one_per_epoch": an epoch is a pass over the inputs).
    references: Literal["all", "one_per_epoch"]
    epochs: Annotated[int, Range(1, 1_000_000)]
    # Most tokens (prompt and answer, as planned, every process together) trained on; the
    # schedule is sized up front to whichever of epochs, token_budget and max_steps is first.
    token_budget: Annotated[int, Range(1, 10**15)] | None
    max_steps: Steps | None
    # Early stopping: validations in a row without a lower validation loss before training
    # stops; the weights of the lowest validation loss are the ones saved. null: off.
    patience: Steps | None
    # Loss weight of an example by its labels' training frequency, per label field:
    # none, sqrt (1/sqrt(frequency)) or balanced (1/frequency); mean weight 1.
    label_weights: Literal["none", "sqrt", "balanced"]
    batch_size: BatchSize
    grad_accum: BatchSize
    max_length: Annotated[int, Range(8, 131_072)]
    max_grad_norm: Annotated[float, Range(0.0, lo_open=True)]
    precision: Literal["auto", "fp32", "bf16"]
    eval_every: Steps
    checkpoint_every: Steps
    log_every: Steps


@dataclass(frozen=True)
class DecodingParams:
    """How answers are generated, by the eval stage and the service alike."""

    max_new_tokens: Annotated[int, Range(1, 8192)]
    do_sample: bool
    temperature: Annotated[float, Range(0.0, lo_open=True)]
    top_p: Annotated[float, Range(0.0, 1.0, lo_open=True)]
    seed: Seed


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

    batch_size: BatchSize
    classical: ClassicalParams


@dataclass(frozen=True)
class GateParams:
    """Quality gates on the fine-tuned model's test metrics (names: llmops.evaluate.metrics)."""

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
class LogsParams:
    """The service's request and feedback logs (llmops.serve.requestlog)."""

    file_mb: Annotated[
        int, Range(1, 100_000)
    ]  # a log file is closed at this size, a new one opened
    retain_days: Annotated[int, Range(1, 36_500)]  # request logs older than this are deleted
    retain_mb: Annotated[int, Range(1, 10_000_000)]  # and the oldest, past this much in all
    refusals_per_s: Annotated[
        float, Range(0.0, 100_000.0)
    ]  # refused requests logged; more are counted
    feedback_window: Annotated[int, Range(1, 100_000_000)]  # latest requests feedback may name
    sink_batch: Annotated[int, Range(1, 1_000_000)]  # lines per object the sink writes
    sink_flush_s: Annotated[float, Range(0.1, 86_400.0)]  # longest wait before a write
    sink_buffer: Annotated[int, Range(1, 100_000_000)]  # lines held while the store is down

    def validate(self) -> None:
        if self.retain_mb < self.file_mb:
            raise ValueError(f"retain_mb ({self.retain_mb}) is below file_mb ({self.file_mb})")
        if self.sink_buffer < self.sink_batch:
            raise ValueError(
                f"sink_buffer ({self.sink_buffer}) is below sink_batch ({self.sink_batch})"
            )


@dataclass(frozen=True)
class TimeoutsParams:
    """How long the server waits on a client (llmops.serve.slowclients, llmops.serve.intake)."""

    headers_s: Annotated[float, Range(0.1, 3600.0)]  # a request's headers, from connect
    body_s: Annotated[float, Range(0.1, 3600.0)]  # its body, once the headers are in
    idle_s: Annotated[int, Range(1, 3600)]  # a kept-alive connection with no request
    ready_s: Annotated[float, Range(0.1, 3600.0)]  # the readiness probe's wait on the model

    def validate(self) -> None:
        if self.idle_s >= self.headers_s:  # else an idle connection would be answered 408
            raise ValueError(f"idle_s ({self.idle_s}) must be below headers_s ({self.headers_s})")


@dataclass(frozen=True)
class ServeParams:
    """The inference service (make bento, make serve; llmops.serve.runtime, service.py)."""

    name: Annotated[str, NonEmpty()]  # model and Bento name in the BentoML stores
    merge: bool  # serve base + adapter merged into one model
    max_batch_size: Annotated[int, Range(2, 1024)]  # most rows generated together
    max_items: Annotated[int, Range(1, 1024)]  # inputs per task request
    max_tokens: Annotated[int, Range(1, 8192)]  # most tokens a request may ask to generate
    max_queue: Annotated[int, Range(1, 100_000)]  # requests in flight before 503
    retry_after_s: Annotated[int, Range(1, 3600)]  # Retry-After of a 503
    api_key_env: Annotated[str, NonEmpty()]  # environment variable holding the API key
    # Where the logs also go, in batches: an fsspec URI (s3://bucket/prefix); "" for none.
    log_uri: str
    logs: LogsParams
    timeouts: TimeoutsParams

    def validate(self) -> None:
        if not BENTO_NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r}: expected lowercase letters, digits, - _ .")
        if not ENV_NAME.fullmatch(self.api_key_env):
            raise ValueError(f"api_key_env {self.api_key_env!r}: expected A-Z, 0-9 and _")


@dataclass(frozen=True)
class MonitorParams:
    """make monitor (llmops.watch.monitor): the served model's logs against the training
    data. Every threshold applies to each field the task declares; none names a field."""

    window_hours: Annotated[float, Range(0.01, 8_760.0)]  # the window read, ending now
    min_requests: Annotated[int, Range(1, 100_000_000)]  # fewer answered: no drift verdict
    drift_share: Annotated[float, Range(0.0, 1.0)]  # share of drifting columns: drifted
    max_unparsed_share: Annotated[float, Range(0.0, 1.0)]  # answers that did not parse
    max_error_share: Annotated[float, Range(0.0, 1.0)]  # 5xx answers among requests
    max_p99_ms: Annotated[float, Range(1.0, 3_600_000.0)]  # p99 latency of answered requests
    max_correction_share: Annotated[float, Range(0.0, 1.0)]  # corrected among rated answers


@dataclass(frozen=True)
class HarvestParams:
    """make harvest (llmops.watch.harvest): corrections and doubtful requests as raw data."""

    window_hours: Annotated[float, Range(0.01, 87_600.0)]  # feedback read, ending now
    min_corrections: Annotated[int, Range(1, 100_000_000)]  # before a retraining PR opens
    sample_unparsed: Annotated[int, Range(0, 100_000_000)]  # unparsed requests to label


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
    monitor: MonitorParams
    harvest: HarvestParams

    def validate(self) -> None:
        fields = [*self.task.inputs, *self.task.outputs]
        unknown = sorted(set(self.prep.columns) - set(fields))
        if unknown:
            raise ValueError(
                f"prep.columns names {unknown}, which are not task fields; expected some of "
                f"{fields}"
            )
        if self.prep.label_case == "fold":
            for name, field in {**self.task.inputs, **self.task.outputs}.items():
                keys = [label_key(v, fold_case=True) for v in field.values or ()]
                if len(set(keys)) < len(keys):
                    raise ValueError(
                        f"prep.label_case is fold, but task field {name!r} declares labels "
                        "that differ only in letter case"
                    )
        if self.serve.max_tokens < self.decoding.max_new_tokens:
            raise ValueError(
                f"serve.max_tokens ({self.serve.max_tokens}) is below decoding.max_new_tokens "
                f"({self.decoding.max_new_tokens}): the service could not answer as eval did"
            )


# The task declaration's file, beside params.yaml: the task, and the prep keys that describe
# the data's shape (which column is which field, ids, split pins, label matching).
TASK_FILE = "task.yaml"
DECLARED = {
    "task": None,
    "prep": ("columns", "id_column", "split_column", "pin_files", "label_case"),
}


def task_file(params_path: Path | str) -> Path:
    """Where the task declaration of a params file lives: task.yaml beside it."""
    return Path(params_path).with_name(TASK_FILE)


def merged_raw(
    params_text: str, params_where: str, task_text: str | None, task_where: str
) -> tuple[object, set[str]]:
    """params.yaml's sections with task.yaml's declaration merged in (read as
    `llmops.config.paramsfile` reads both), and the dotted keys task.yaml set. A section or
    key stated in both files, or a knob in task.yaml, is a ParamsError naming the file."""
    raw = read_yaml(params_text, params_where)
    if task_text is None:
        return raw, set()
    declared = read_yaml(task_text, task_where)
    if not isinstance(declared, dict):
        raise ParamsError(f"{task_where}: (top level): expected a mapping with `task`")
    if not isinstance(raw, dict):
        return raw, set()  # parse names what params.yaml should be
    merged, keys = dict(raw), set()
    for section, value in declared.items():
        if section not in DECLARED:
            raise ParamsError(
                f"{task_where}: {section}: not part of the task declaration; expected task or "
                "prep (its data keys); knobs live in params.yaml"
            )
        allowed = DECLARED[section]
        if allowed is None:
            if section in raw:
                raise ParamsError(
                    f"{params_where}: {section}: declared in {task_where} as well; keep it in "
                    f"{task_where} only"
                )
            merged[section] = value
            keys.add(section)
            continue
        if not isinstance(value, dict):
            raise ParamsError(
                f"{task_where}: {section}: expected a mapping of some of {', '.join(allowed)}"
            )
        own = raw.get(section, {})
        for key in value:
            if key not in allowed:
                raise ParamsError(
                    f"{task_where}: {section}.{key}: not part of the task declaration; expected "
                    f"some of {', '.join(allowed)}; other {section} knobs live in params.yaml"
                )
            if isinstance(own, dict) and key in own:
                raise ParamsError(
                    f"{params_where}: {section}.{key}: declared in {task_where} as well; keep "
                    f"it in {task_where} only"
                )
        merged[section] = {**own, **value} if isinstance(own, dict) else own
        keys |= {f"{section}.{key}" for key in value}
    return merged, keys


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate a params file, with the task declaration of the task.yaml beside
    it (when there is one; a params file may also hold `task` itself, as projects made
    before task.yaml do); raise ParamsError naming the file and the key."""
    declaration = task_file(path)
    task_text = read_text(declaration) if declaration.is_file() else None
    raw, declared = merged_raw(read_text(path), str(path), task_text, str(declaration))
    try:
        return parse(Params, raw, where=str(path))
    except ParamsError as err:
        message, prefix = str(err), f"{path}: "
        key = message.removeprefix(prefix).split(":", 1)[0]
        if message.startswith(prefix) and any(
            key == k or key.startswith(f"{k}.") for k in declared
        ):
            raise ParamsError(f"{declaration}: {message.removeprefix(prefix)}") from None
        raise


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
