"""Materialise the base model in models/base/: safetensors weights, tokenizer and card.json.

Run: python -m llmops.stages.base --params params.yaml --train data/prepared/train.jsonl \
        --prompt prompts/triage.jinja --out models/base --metrics metrics/base.json

`base.model` picks the source:
- `tiny`: built offline from the training split (llmops.tiny): a BPE tokenizer trained on
  the prompts and answers as the model will read them, and a small Llama pretrained from
  scratch on the plain text (each message followed by its reply);
- a Hugging Face id (`org/name`) at the pinned `base.revision`: downloaded once (safetensors
  and tokenizer files only) into models/base/, which DVC caches and versions;
- a local directory (`./path` or `/path`): its safetensors, config and tokenizer copied.
card.json records the source, the revision or recipe, and the parameter count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path

from llmops.examples import DataError, answer_text, prompt_text, read_split
from llmops.models import ModelError, count_parameters, load_base, load_tokenizer, weight_files
from llmops.params import BaseParams, ParamsError, TaskParams, load_params
from llmops.prompts import PromptError, load_template

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


def base(params: BaseParams, task: TaskParams, train: Path, prompt: Path, out: Path) -> dict:
    """Write the base model to `out`; returns the card."""
    kind = source_kind(params.model)
    if kind == "hub" and not params.revision:
        raise ParamsError(
            f"base.revision: expected a commit sha or tag for hub model {params.model!r}, got null"
        )
    if kind != "hub" and params.revision:
        raise ParamsError(f"base.revision: only for hub models; set it to null for {kind!r}")
    if kind == "local" and Path(params.model).expanduser().resolve() == out.resolve():
        raise ParamsError(f"base.model: {params.model!r} is the output folder itself")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if kind == "tiny":
        card = build_tiny(params, task, train, prompt, out)
    elif kind == "hub":
        card = download(params, out, params.trust_remote_code)
    else:
        card = copy_local(Path(params.model).expanduser(), out, params.trust_remote_code)
    model = load_base(out, params.trust_remote_code)  # proves the result loads
    card["parameters"] = count_parameters(model)[1]
    card["architecture"] = type(model).__name__
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def build_tiny(params: BaseParams, task: TaskParams, train: Path, prompt: Path, out: Path) -> dict:
    from llmops import tiny

    rows = read_split(train)
    template = load_template(prompt)
    rendered = [prompt_text(template, task, r["message"]) + answer_text(r) for r in rows]
    documents = [f"{r['message']}\n{r['reply']}" for r in rows]
    tokenizer = tiny.build_tokenizer(rendered + documents, params.tiny.vocab_size)
    model = tiny.build_model(params.tiny, tokenizer)
    stats = tiny.pretrain(model, tokenizer, documents, params.tiny)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "source": "tiny",
        "recipe": dataclasses.asdict(params.tiny),
        "trained_on": f"{train.as_posix()} ({len(rows)} rows)",
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
    parser.add_argument("--train", type=Path, required=True, help="prepared training split")
    parser.add_argument("--prompt", type=Path, required=True, help="prompt template (tiny)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)
        card = base(params.base, params.task, args.train, args.prompt, args.out)
    except (ParamsError, DataError, ModelError, PromptError, ValueError, OSError) as err:
        raise SystemExit(f"base: {err}") from None
    metrics = {"parameters": card["parameters"]}
    if "pretraining" in card:
        metrics |= {f"pretrain_{k}": v for k, v in card["pretraining"].items()}
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
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
