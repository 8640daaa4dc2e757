"""Packaging for serving (llmops.ship.bento): the merged model answers as base + adapter, the
package records its lineage, and the built Bento is a valid image definition (Dockerfile,
pinned requirements, the library's wheel) with the model version it was built with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from llmops.config.params import LoraParams, load_params
from llmops.model.tokenised import read_split
from llmops.serve import runtime
from llmops.ship import bento

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def merged_and_not(project, adapter, tmp_path_factory):
    params = load_params(project / "params.yaml")
    out = {}
    for merge in (False, True):
        folder = tmp_path_factory.mktemp(f"merge-{merge}")
        serve = dataclasses.replace(params.serve, merge=merge)
        bento.package(
            dataclasses.replace(params, serve=serve),
            project / "models" / "base",
            adapter,
            folder,
            {"x": 1},
        )
        out[merge] = folder
    return out


def test_merged_model_gives_the_same_greedy_answers(merged_and_not, project):
    # The tiny model ties lm_head to the input embeddings and the adapter trains them in
    # full (modules_to_save): the merged model keeps them tied, and answers as base + adapter.
    rows = read_split(project / "data" / "prepared" / "test.jsonl")
    items = [runtime.Item({"text": r["text"]}, 24) for r in rows[:8]]
    plain = runtime.Served.load(merged_and_not[False]).complete(items)
    merged = runtime.Served.load(merged_and_not[True]).complete(items)
    assert [r.text for r in merged] == [r.text for r in plain]
    assert (merged_and_not[True] / "merged" / "model.safetensors").exists()
    assert not (merged_and_not[True] / "adapter").exists()
    config = json.loads((merged_and_not[True] / "merged" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True


def test_the_package_records_task_decoding_cleaning_and_lineage(merged_and_not, project):
    params = load_params(project / "params.yaml")
    package = runtime.Package.read(merged_and_not[False])
    assert package.task == params.task and package.decoding == params.decoding
    assert package.redact == params.prep.redact and package.merged is False
    assert package.lineage == {"x": 1}
    template = (merged_and_not[False] / runtime.TEMPLATE_FILE).read_text()
    assert template == (project / "models" / "adapter" / "prompt.jinja").read_text()


def test_a_package_of_another_format_is_refused(tmp_path):
    (tmp_path / runtime.SERVING_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="format 99"):
        runtime.Package.read(tmp_path)


def test_requirements_pin_the_serving_closure_to_this_environment():
    pins = dict(line.split("==") for line in bento.requirements())
    lock = dict(  # "name==version \" lines, each followed by its --hash lines
        line.split()[0].split("==")
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert {"torch", "transformers", "peft", "bentoml", "fastapi", "jinja2"} <= set(pins)
    assert "mlflow" not in pins and "dvc" not in pins  # training-side tools stay out
    assert "+" not in pins["torch"]  # the image installs the build for its platform
    for name, version in pins.items():
        locked = {bento._canonical(k): v for k, v in lock.items()}.get(name)
        assert locked is None or locked.split("+")[0] == version, name


def test_the_bentofile_wheel_is_the_library_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    config = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert config["python"]["wheels"] == [f"build/bento/llmops_template-{version}-py3-none-any.whl"]
    assert config["python"]["requirements_txt"] == "build/bento/requirements.txt"
    makefile = (REPO / "Makefile").read_text()
    assert f"BENTO ?= {config['name']}:latest" in makefile


@pytest.mark.e2e
def test_the_built_bento_pins_its_model_and_defines_an_image(bento):
    store = bento.home / "bentos" / bento.tag.replace(":", "/")
    manifest = yaml.safe_load((store / "bento.yaml").read_text())
    models = {m["tag"] for s in manifest["services"] for m in s["models"]}
    assert models == {bento.model}
    assert manifest["args"] == {"model": bento.model}  # service.py serves this version
    training = json.loads((bento.project / "models" / "adapter" / "training.json").read_text())
    assert manifest["labels"]["mlflow_run_id"] == training["run_id"]
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", manifest["labels"]["git_commit"])
    dockerfile = (store / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile and "install.sh" in dockerfile
    assert "USER bentoml" in dockerfile and "ENV LLMOPS_LOG_DIR" in dockerfile
    requirements = (store / "env" / "python" / "requirements.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", requirements, re.M)
    assert all("==" in line for line in requirements.splitlines() if line and line[0] != "#")
    wheels = list((store / "env" / "python" / "wheels").glob("llmops_template-*.whl"))
    assert len(wheels) == 1
    assert (store / "src" / "service.py").exists() and (store / "src" / "params.yaml").exists()


@pytest.mark.e2e
def test_the_model_store_entry_carries_the_lineage(bento):
    name, version = bento.model.split(":")
    info = yaml.safe_load((bento.home / "models" / name / version / "model.yaml").read_text())
    lineage = info["metadata"]
    training = json.loads((bento.project / "models" / "adapter" / "training.json").read_text())
    assert lineage["mlflow_run_id"] == training["run_id"]
    evaluated = json.loads((bento.project / "metrics" / "eval.json").read_text())["tuned"]
    assert lineage["eval"] == evaluated
    prompt = (bento.project / "models" / "adapter" / "prompt.jinja").read_bytes()
    assert lineage["prompt_sha256"] == hashlib.sha256(prompt).hexdigest()
    assert lineage["up_to_date"] is False  # the test project is not a DVC repository
    assert info["labels"]["mlflow_run_id"] == training["run_id"]


@pytest.mark.parametrize(
    ("targets", "save"), [(("q_proj", "lm_head"), ()), (("q_proj",), ("embed_tokens",))]
)
def test_merging_keeps_the_tied_output_matrix_as_the_adapter_trained_it(
    project, tmp_path, targets, save
):
    # LoRA on lm_head (tied to the input embeddings in `tiny`) or the embeddings trained in
    # full: the merged model must compute what base + adapter computes. The adapter's
    # weights are randomised rather than trained, so that every part of it counts.
    import torch
    from peft import PeftModel

    from llmops.model.lora import attach
    from llmops.model.models import load_base, load_tokenizer

    base = project / "models" / "base"
    lora = LoraParams(r=4, alpha=8.0, dropout=0.0, target_modules=targets, modules_to_save=save)
    model = attach(load_base(base), lora, seed=0)
    torch.manual_seed(1)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.requires_grad:
                weight.add_(torch.randn_like(weight) * 0.2)
    model.save_pretrained(tmp_path / "adapter")
    load_tokenizer(base).save_pretrained(tmp_path / "adapter")
    bento.merge(base, tmp_path / "adapter", tmp_path / "merged")

    ids = load_tokenizer(base)("a quiet evening review", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        plain = PeftModel.from_pretrained(load_base(base), tmp_path / "adapter").eval()
        merged = load_base(tmp_path / "merged")
        torch.testing.assert_close(merged(ids).logits, plain(ids).logits, rtol=1e-4, atol=1e-4)
        unmerged = load_base(base)(ids).logits
        assert (unmerged - plain(ids).logits).abs().max() > 0.1  # the adapter changes answers
