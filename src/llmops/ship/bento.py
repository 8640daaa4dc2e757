"""Package the evaluated model for serving and build the Bento (make bento).

Run: python -m llmops.ship.bento --params params.yaml --base models/base --adapter models/adapter \
       --eval metrics/eval.json --lock dvc.lock --bentofile bentofile.yaml

1. Refuses a pipeline that is not up to date (`dvc status`), so what is packaged is what
   dvc.lock and the eval metrics describe.
2. Imports the model into the BentoML model store as `<serve.name>:<version>`: base +
   adapter (or, with `serve.merge`, one merged model), the adapter's prompt template and
   `serving.json` (`llmops.serve.runtime.Package`), labelled and annotated with its lineage: the
   git commit, the dvc.lock hashes of the prepared data, base model and adapter, the MLflow
   run id, the prompt template's sha256 and the eval metrics.
3. Writes the image's Python requirements (`build/bento/requirements.txt`: the serving
   packages and everything they need, pinned to this environment's versions) and the
   library's wheel, then runs `bentoml build`, whose Bento pins that model version.

Prints `model: <tag>` and `bento: <tag>`; under GitHub Actions it also writes `model`,
`model_version` (what the smoke test expects the service to serve) and `bento` to
$GITHUB_OUTPUT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from llmops.config.params import Params, load_params
from llmops.config.tracking import git_commit, locked_hash
from llmops.serve.runtime import TEMPLATE_FILE, Package
from llmops.ship.release import github_output
from llmops.ship.reviewed import differences

log = logging.getLogger(__name__)
# What the service imports at run time; their dependencies are added by `requirements`.
SERVING_PACKAGES = (
    "bentoml",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "tokenizers",
    "safetensors",
    "jinja2",
    "pyyaml",
    "fastapi",
    "pydantic",
    # redaction of what the service logs (llmops.data.redact)
    "phonenumbers",
    "python-stdnum",
    "detect-secrets",
    # the request and feedback logs shipped to an object store (llmops.serve.logsink)
    "fsspec",
    "s3fs",
)
BUILD = Path("build/bento")


def lineage(params: Params, adapter: Path, metrics: Path, lock: Path) -> dict:
    """Where the packaged model comes from, for labels, metadata and GET /v1/models."""
    training = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    evaluated = json.loads(metrics.read_text(encoding="utf-8"))
    template = (adapter / TEMPLATE_FILE).read_bytes()
    return {
        "git_commit": git_commit(),
        "data_md5": locked_hash(lock, "prep", "data/prepared"),
        "base_md5": locked_hash(lock, "base", "models/base"),
        "adapter_md5": locked_hash(lock, "train", "models/adapter"),
        "mlflow_run_id": training.get("run_id", "unknown"),
        "trained_at_commit": training.get("git_commit", "unknown"),
        "base_model": params.base.model,
        "prompt_sha256": hashlib.sha256(template).hexdigest(),
        "eval": evaluated.get("tuned", {}),
        "created": int(time.time()),
    }


def labels(info: dict) -> dict[str, str]:
    """The short lineage as BentoML labels (strings; filterable with `bentoml models list`)."""
    keys = ("git_commit", "data_md5", "base_md5", "adapter_md5", "mlflow_run_id")
    out = {k: str(info[k]) for k in keys}
    out["prompt_sha256"] = info["prompt_sha256"][:16]
    return out


def merge(base: Path, adapter: Path, out: Path, trust_remote_code: bool = False) -> None:
    """Fold the LoRA adapter into the base weights and save one model (safetensors).

    When the adapter puts LoRA on `lm_head` and the base ties it to the input embeddings,
    the merged model gets its own output matrix, so merging the update leaves the input
    embeddings as training saw them: the greedy answers stay the same. Modules the adapter
    trained in full (modules_to_save) replace the base's, tied as they were in training.
    """
    import torch
    from peft import PeftModel

    from llmops.model.lora import tied
    from llmops.model.models import load_base, load_tokenizer

    model = load_base(base, trust_remote_code)
    targets = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    head = model.get_output_embeddings()
    head_name = next(n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is head)
    if tied(model) and head_name in (targets.get("target_modules") or ()):
        head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
        model.config.tie_word_embeddings = False
        if hasattr(model, "_tied_weights_keys"):
            model._tied_weights_keys = []
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    load_tokenizer(adapter, trust_remote_code).save_pretrained(out)


def package(params: Params, base: Path, adapter: Path, out: Path, info: dict) -> Package:
    """Write the served model's folder: weights, prompt template and serving.json."""
    merged = params.serve.merge
    if merged:
        merge(base, adapter, out / "merged", params.base.trust_remote_code)
    else:
        shutil.copytree(base, out / "base")
        shutil.copytree(adapter, out / "adapter")
    shutil.copy2(adapter / TEMPLATE_FILE, out / TEMPLATE_FILE)
    result = Package.from_params(params, merged, info)
    result.write(out)
    return result


def store(params: Params, base: Path, adapter: Path, info: dict) -> str:
    """Import the packaged model into the BentoML model store; its tag."""
    import bentoml

    with bentoml.models.create(params.serve.name, labels=labels(info), metadata=info) as model:
        package(params, base, adapter, Path(model.path), info)
    log.info("model store: %s", model.tag)
    return str(model.tag)


def requirements(roots: tuple[str, ...] = SERVING_PACKAGES) -> list[str]:
    """`roots` and their dependencies, pinned to the installed versions (local version tags
    such as +cpu dropped, so the image installs the build for its own platform)."""
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = _canonical(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this environment does not have
        seen[name] = dist.version.split("+")[0]
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            from packaging.requirements import Requirement

            parsed = Requirement(req)
            if parsed.marker is None or parsed.marker.evaluate():
                todo.append(parsed.name)
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build(bentofile: Path, model_tag: str, info: dict, source: Path = Path(".")) -> str:
    """Write the requirements and the wheel of the library (`source`: the folder holding
    pyproject.toml), then `bentoml build`; the Bento tag."""
    import bentoml

    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "requirements.txt").write_text("\n".join(requirements()) + "\n", encoding="utf-8")
    for old in BUILD.glob("*.whl"):
        old.unlink()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(BUILD.resolve()),
            str(source),
        ],
        check=True,
    )
    # The model version is a build argument (service.py `Args`), so the Bento pins it.
    bento = bentoml.bentos.build_bentofile(
        str(bentofile), labels=labels(info), args={"model": model_tag}
    )
    log.info("bento: %s (model %s)", bento.tag, model_tag)
    return str(bento.tag)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="metrics/eval.json")
    parser.add_argument("--lock", type=Path, required=True, help="dvc.lock")
    parser.add_argument("--bentofile", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=Path("."), help="the library's folder")
    parser.add_argument("--model-only", action="store_true", help="skip bentoml build")
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="package even if dvc status reports changes (lineage says so)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    params = load_params(args.params)
    changed = "\n".join(differences())
    if changed and not args.allow_stale:
        raise SystemExit(f"the pipeline is not up to date; run make repro first:\n{changed}")
    info = lineage(params, args.adapter, args.eval, args.lock) | {"up_to_date": not changed}
    tag = store(params, args.base, args.adapter, info)
    print(f"model: {tag}")
    built = {"model": tag, "model_version": tag.rpartition(":")[2]}
    if not args.model_only:
        built["bento"] = build(args.bentofile, tag, info, args.source)
        print(f"bento: {built['bento']}")
    github_output(built, os.environ)


if __name__ == "__main__":
    main()
