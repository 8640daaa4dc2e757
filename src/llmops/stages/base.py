"""Materialise the base model in models/base/: safetensors weights, tokenizer and card.json.

Run: python -m llmops.stages.base --params params.yaml --data data/prepared \
        --prompt prompts/<task>.jinja --out models/base --metrics metrics/base.json

`base.model` picks the source:
- `tiny`: built offline from the training split (llmops.model.tiny): a BPE tokenizer trained on
  the prompts and answers as the model will read them, and a small Llama pretrained from
  scratch on the plain text (each row's text fields, without the task format);
- a Hugging Face id (`org/name`) at the pinned `base.revision`: downloaded once (safetensors
  and tokenizer files only) into models/base/, which DVC caches and versions;
- a local directory (`./path` or `/path`): its safetensors, config and tokenizer copied.
Before any pretraining the stage checks that the longest prompt + answer of every split
fits `train.max_length` and the model's context, naming the example and the knob.
card.json records the source, the revision or recipe, and the parameter count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from llmops.config import atomic
from llmops.config.params import SPLITS, BaseParams, Params, ParamsError, load_params
from llmops.config.prompts import PromptError, PromptTemplate, load_template
from llmops.config.task import Task
from llmops.model.models import (
    ModelError,
    context_length,
    count_parameters,
    load_base,
    load_tokenizer,
    set_threads,
    weight_files,
)
from llmops.model.tokenised import (
    DataError,
    build_prompt,
    check_length,
    encode_rows,
    longest,
    read_split,
)

log = logging.getLogger(__name__)

# Files taken from a hub repository or local directory: weights only as safetensors.
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]


def source_kind(model: str) -> str:
    """`tiny`, `local` (a path) or `hub` (an org/name id)."""
    if model == "tiny":
        return "tiny"
    if model.startswith(("/", "./", "../", "~")):
        return "local"
    return "hub"


@dataclass
class Splits:
    """The prepared rows the base stage reads, with the task and template that render them."""

    task: Task
    template: PromptTemplate
    rows: dict[str, list[dict]]


def read_splits(params: Params, data: Path, prompt: Path) -> Splits:
    """The non-empty prepared splits (train must be there) and the checked template."""
    task = Task.from_params(params.task)
    template = load_template(prompt, task.variables())
    rows = {name: read_split(data / f"{name}.jsonl") for name in SPLITS if _has_rows(data, name)}
    return Splits(task, template, rows)


def _has_rows(data: Path, name: str) -> bool:
    """Train is always read (read_split fails, naming it, when it is missing or empty)."""
    path = data / f"{name}.jsonl"
    return name == "train" or (path.exists() and path.stat().st_size > 0)


def base(params: Params, data: Path, prompt: Path, out: Path) -> dict:
    """Write the base model to `out`; returns the card."""
    cfg = params.base
    kind = source_kind(cfg.model)
    if kind == "hub" and not cfg.revision:
        raise ParamsError(
            f"base.revision: expected a commit sha or tag for hub model {cfg.model!r}, got null"
        )
    if kind != "hub" and cfg.revision:
        raise ParamsError(f"base.revision: only for hub models; set it to null for {kind!r}")
    if kind == "local" and Path(cfg.model).expanduser().resolve() == out.resolve():
        raise ParamsError(f"base.model: {cfg.model!r} is the output folder itself")
    splits = read_splits(params, data, prompt)  # before any download or pretraining
    with atomic.folder(out) as tmp:  # whole or not at all: a failed check leaves no model
        return materialise(params, kind, splits, tmp)


def materialise(params: Params, kind: str, splits: Splits, out: Path) -> dict:
    """Build, download or copy the base model into the empty folder `out`; the card."""
    cfg = params.base
    if kind == "tiny":
        card = build_tiny(params, splits, out)
    else:
        if kind == "hub":
            card = download(cfg, out, cfg.trust_remote_code)
        else:
            card = copy_local(Path(cfg.model).expanduser(), out, cfg.trust_remote_code)
        tokenizer = load_tokenizer(out, cfg.trust_remote_code)
        card["longest_example_tokens"] = check_fits(splits, tokenizer, params, context_length(out))
    model = load_base(out, cfg.trust_remote_code)  # proves the result loads
    card["parameters"] = count_parameters(model)[1]
    card["architecture"] = type(model).__name__
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def check_fits(splits: Splits, tokenizer, params: Params, context: int | None) -> int:
    """The longest prompt + answer of any split, in tokens; raises if it does not fit."""
    examples = []
    for name, rows in splits.rows.items():
        encoded = encode_rows(rows, tokenizer, splits.template, splits.task)
        where = f"{name} split"
        if context is not None:
            knob = "base.tiny.context_length" if params.base.model == "tiny" else "the context"
            check_length(encoded, context, f"the base model's context ({knob})", where)
        check_length(encoded, params.train.max_length, "train.max_length", where)
        examples += encoded
    return len(longest(examples).input_ids)


def build_tiny(params: Params, splits: Splits, out: Path) -> dict:
    from llmops.model import tiny

    recipe, task = params.base.tiny, splits.task
    rows = splits.rows["train"]
    prompts = [build_prompt(splits.template, task, r) for r in rows]
    rendered = [
        (p.text or "\n".join(m["content"] for m in p.messages)) + task.answer_text(r)
        for p, r in zip(prompts, rows, strict=True)
    ]
    texts = [f.name for f in task.fields if not f.is_label]
    documents = ["\n".join(r[name] for name in texts) for r in rows]
    tokenizer = tiny.build_tokenizer(rendered + documents, recipe.vocab_size)
    longest_tokens = check_fits(splits, tokenizer, params, recipe.context_length)
    model = tiny.build_model(recipe, tokenizer)
    stats = tiny.pretrain(model, tokenizer, documents, recipe)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "source": "tiny",
        "recipe": dataclasses.asdict(recipe),
        "trained_on": f"train split ({len(rows)} rows)",
        "longest_example_tokens": longest_tokens,
        "pretraining": {k: round(v, 4) for k, v in stats.items()},
    }


def model_files(trust_remote_code: bool) -> list[str]:
    """What to take from a model repository: the model's own Python only if trusted."""
    return [*MODEL_FILES, "*.py"] if trust_remote_code else MODEL_FILES


def download(params: BaseParams, out: Path, trust_remote_code: bool) -> dict:
    from huggingface_hub import snapshot_download

    snapshot_download(
        params.model,
        revision=params.revision,
        local_dir=out,
        allow_patterns=model_files(trust_remote_code),
    )
    shutil.rmtree(out / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
    weight_files(out)
    return {"source": f"hf://{params.model}", "revision": params.revision}


def copy_local(source: Path, out: Path, trust_remote_code: bool) -> dict:
    weight_files(source)
    for pattern in model_files(trust_remote_code):
        for path in source.glob(pattern):
            shutil.copy2(path, out / path.name)
    return {"source": str(source)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="prepared splits")
    parser.add_argument("--prompt", type=Path, required=True, help="prompt template")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    set_threads()
    try:
        params = load_params(args.params)
        card = base(params, args.data, args.prompt, args.out)
    except (ParamsError, DataError, ModelError, PromptError, ValueError, OSError) as err:
        raise SystemExit(f"base: {err}") from None
    metrics = {"parameters": card["parameters"]}
    if "longest_example_tokens" in card:
        metrics["longest_example_tokens"] = card["longest_example_tokens"]
    if "pretraining" in card:
        metrics |= {f"pretrain_{k}": v for k, v in card["pretraining"].items()}
    atomic.write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    tokenizer = load_tokenizer(args.out, params.base.trust_remote_code)
    log.info(
        "base model %s: %s parameters, vocabulary %d -> %s",
        card["source"],
        f"{card['parameters']:,}",
        len(tokenizer),
        args.out,
    )


if __name__ == "__main__":
    main()
