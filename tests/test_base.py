"""The base stage: the offline tiny model (safetensors, tokenizer, card), the source rules
(hub ids need a pinned revision), local directories, and refusing pickle weights."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file

from llmops.models import ModelError, count_parameters, load_base, load_tokenizer
from llmops.params import ParamsError, load_params
from llmops.stages import base as stage


def test_tiny_base_is_safetensors_tokenizer_and_card(project):
    folder = project / "models" / "base"
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    card = json.loads((folder / "card.json").read_text())
    params = load_params(project / "params.yaml")
    assert card["source"] == "tiny" and card["architecture"] == "LlamaForCausalLM"
    assert card["recipe"]["hidden_size"] == params.base.tiny.hidden_size == 32
    assert card["parameters"] == count_parameters(load_base(folder))[1]
    assert card["pretraining"]["tokens"] == 6 * 8 * 64  # steps x batch x block
    tokenizer = load_tokenizer(folder)
    assert len(tokenizer) == params.base.tiny.vocab_size
    text = "Ünïcode and <EMAIL> survive: ORD-123456 🙂"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: lossless


def test_tiny_base_is_reproducible(project, tmp_path):
    params = load_params(project / "params.yaml")
    out = tmp_path / "base"
    train = project / "data" / "prepared" / "train.jsonl"
    stage.base(params.base, params.task, train, project / "prompts" / "triage.jinja", out)
    again = load_file(out / "model.safetensors")
    for key, value in load_file(project / "models" / "base" / "model.safetensors").items():
        assert again[key].equal(value), key


def test_source_kind():
    assert stage.source_kind("tiny") == "tiny"
    assert stage.source_kind("HuggingFaceTB/SmolLM2-135M-Instruct") == "hub"
    assert stage.source_kind("./my-model") == "local"
    assert stage.source_kind("/models/llama") == "local"


def test_hub_model_needs_a_pinned_revision(project, tmp_path):
    params = load_params(project / "params.yaml")
    hub = type(params.base)("org/model", None, False, params.base.tiny)
    with pytest.raises(ParamsError, match=r"base\.revision: expected a commit sha or tag"):
        stage.base(hub, params.task, tmp_path / "t.jsonl", tmp_path / "p.jinja", tmp_path / "o")
    tiny = type(params.base)("tiny", "main", False, params.base.tiny)
    with pytest.raises(ParamsError, match=r"base\.revision: only for hub models"):
        stage.base(tiny, params.task, tmp_path / "t.jsonl", tmp_path / "p.jinja", tmp_path / "o")


def test_hub_download_asks_for_the_pinned_revision_and_safetensors_only(
    project, tmp_path, monkeypatch
):
    # No network here: snapshot_download is replaced by a copy from a local folder that
    # stands in for the hub repository; the stage's own logic runs for real.
    import huggingface_hub

    asked = {}

    def fake_snapshot_download(repo_id, revision, local_dir, allow_patterns):
        asked.update(repo_id=repo_id, revision=revision, patterns=allow_patterns)
        shutil.copytree(project / "models" / "base", local_dir, dirs_exist_ok=True)
        (local_dir / ".cache").mkdir()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    params = load_params(project / "params.yaml")
    hub = type(params.base)("org/model", "0123abcd", False, params.base.tiny)
    out = tmp_path / "base"
    card = stage.base(hub, params.task, tmp_path / "unused", tmp_path / "unused", out)
    assert asked["repo_id"] == "org/model" and asked["revision"] == "0123abcd"
    assert "*.safetensors" in asked["patterns"] and not {"*.bin", "*.pt"} & set(asked["patterns"])
    assert card["source"] == "hf://org/model" and card["revision"] == "0123abcd"
    assert not (out / ".cache").exists()
    assert json.loads((out / "card.json").read_text())["parameters"] == card["parameters"]


def test_local_directory_is_copied_and_pickle_weights_refused(project, tmp_path):
    params = load_params(project / "params.yaml")
    source = tmp_path / "mine"
    shutil.copytree(project / "models" / "base", source)
    local = type(params.base)(str(source), None, False, params.base.tiny)
    card = stage.base(local, params.task, tmp_path / "unused", tmp_path / "unused", tmp_path / "o")
    assert card["source"] == str(source)
    assert (tmp_path / "o" / "model.safetensors").exists()

    (source / "model.safetensors").rename(source / "pytorch_model.bin")
    with pytest.raises(
        ModelError, match=r"no \*\.safetensors weights; found \['pytorch_model.bin'\]"
    ):
        stage.base(local, params.task, tmp_path / "unused", tmp_path / "unused", tmp_path / "o2")


def test_remote_code_is_off_by_default(params):
    assert params.base.trust_remote_code is False


def test_model_code_is_taken_only_when_trusted_and_the_output_is_not_its_own_source(
    project, tmp_path
):
    assert "*.py" not in stage.model_files(False) and "*.py" in stage.model_files(True)
    params = load_params(project / "params.yaml")
    out = tmp_path / "base"
    out.mkdir()
    itself = type(params.base)(str(out), None, False, params.base.tiny)
    with pytest.raises(ParamsError, match="is the output folder itself"):
        stage.base(itself, params.task, tmp_path / "unused", tmp_path / "unused", out)
