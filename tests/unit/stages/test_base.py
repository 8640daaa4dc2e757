"""The base stage: the offline tiny model (safetensors, tokenizer, card), the source rules
(hub ids need a pinned revision), local directories, and refusing pickle weights."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from safetensors.torch import load_file

from llmops.config.params import ParamsError, load_params
from llmops.model.models import ModelError, count_parameters, load_base, load_tokenizer
from llmops.model.tokenised import DataError
from llmops.stages import base as stage
from tests.synthetic import write_params


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
    text = "Ünïcode and <EMAIL> survive: R-123456 🙂"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: lossless


def test_tiny_base_is_reproducible(project, tmp_path):
    params = load_params(project / "params.yaml")
    out = tmp_path / "base"
    stage.base(params, project / "data" / "prepared", project / params.task.prompt, out)
    again = load_file(out / "model.safetensors")
    for key, value in load_file(project / "models" / "base" / "model.safetensors").items():
        assert again[key].equal(value), key


def test_tiny_tokenizer_has_a_chat_template(project):
    tokenizer = load_tokenizer(project / "models" / "base")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<|user|>\nhi\n<|assistant|>\n"


def with_params(project, tmp_path, override: dict):
    """A copy of the project's inputs with other params (the model is rebuilt)."""
    dest = tmp_path / "p"
    shutil.copytree(project / "data" / "prepared", dest / "data" / "prepared")
    shutil.copytree(project / "prompts", dest / "prompts")
    write_params(dest / "params.yaml", override)
    return dest, load_params(dest / "params.yaml")


def test_an_example_too_long_for_max_length_fails_before_pretraining(
    project, tmp_path, monkeypatch
):
    from llmops.model import tiny

    dest, params = with_params(project, tmp_path, {"train": {"max_length": 40}})
    monkeypatch.setattr(tiny, "pretrain", lambda *a: pytest.fail("pretraining started"))
    with pytest.raises(DataError) as err:
        stage.base(params, dest / "data" / "prepared", dest / params.task.prompt, dest / "out")
    message = str(err.value)
    assert "split: example R" in message and "train.max_length is 40" in message
    assert "(prompt " in message and " + answer " in message


def test_an_example_longer_than_the_context_names_that_knob(project, tmp_path, monkeypatch):
    from llmops.model import tiny

    override = {"base": {"tiny": {"context_length": 64}}, "train": {"max_length": 60}}
    dest, params = with_params(project, tmp_path, override)
    monkeypatch.setattr(tiny, "pretrain", lambda *a: pytest.fail("pretraining started"))
    with pytest.raises(
        DataError, match=r"but the base model's context \(base.tiny.context_length\) is 64"
    ):
        stage.base(params, dest / "data" / "prepared", dest / params.task.prompt, dest / "out")


def test_the_stage_reports_the_longest_example(project, tmp_path):
    from llmops.config.prompts import load_template
    from llmops.config.task import Task
    from llmops.model.tokenised import encode_rows, read_split

    card = json.loads((project / "models" / "base" / "card.json").read_text())
    params = load_params(project / "params.yaml")
    task = Task.from_params(params.task)
    template = load_template(project / params.task.prompt, task.variables())
    tokenizer = load_tokenizer(project / "models" / "base")
    rows = [
        row
        for split in ("train", "val", "test")
        for row in read_split(project / "data" / "prepared" / f"{split}.jsonl")
    ]
    longest = max(len(e.input_ids) for e in encode_rows(rows, tokenizer, template, task))
    assert card["longest_example_tokens"] == longest


def test_source_kind():
    assert stage.source_kind("tiny") == "tiny"
    assert stage.source_kind("HuggingFaceTB/SmolLM2-135M-Instruct") == "hub"
    assert stage.source_kind("./my-model") == "local"
    assert stage.source_kind("/models/llama") == "local"


def source(params, model: str, revision: str | None = None):
    """`params` with base.model (and base.revision) replaced."""
    return dataclasses.replace(
        params, base=dataclasses.replace(params.base, model=model, revision=revision)
    )


def test_hub_model_needs_a_pinned_revision(project, tmp_path):
    params = load_params(project / "params.yaml")
    data, prompt = project / "data" / "prepared", project / params.task.prompt
    with pytest.raises(ParamsError, match=r"base\.revision: expected a commit sha or tag"):
        stage.base(source(params, "org/model"), data, prompt, tmp_path / "o")
    with pytest.raises(ParamsError, match=r"base\.revision: only for hub models"):
        stage.base(source(params, "tiny", "main"), data, prompt, tmp_path / "o")


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
    params = source(load_params(project / "params.yaml"), "org/model", "0123abcd")
    out = tmp_path / "base"
    card = stage.base(params, project / "data" / "prepared", project / params.task.prompt, out)
    assert asked["repo_id"] == "org/model" and asked["revision"] == "0123abcd"
    assert "*.safetensors" in asked["patterns"] and not {"*.bin", "*.pt"} & set(asked["patterns"])
    assert card["source"] == "hf://org/model" and card["revision"] == "0123abcd"
    assert card["longest_example_tokens"] > 0  # the length check ran on the downloaded tokenizer
    assert not (out / ".cache").exists()
    assert json.loads((out / "card.json").read_text())["parameters"] == card["parameters"]


def test_local_directory_is_copied_and_pickle_weights_refused(project, tmp_path):
    params = load_params(project / "params.yaml")
    data, prompt = project / "data" / "prepared", project / params.task.prompt
    mine = tmp_path / "mine"
    shutil.copytree(project / "models" / "base", mine)
    card = stage.base(source(params, str(mine)), data, prompt, tmp_path / "o")
    assert card["source"] == str(mine)
    assert (tmp_path / "o" / "model.safetensors").exists()

    (mine / "model.safetensors").rename(mine / "pytorch_model.bin")
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    for out in (tmp_path / "o2", tmp_path / "o"):
        with pytest.raises(
            ModelError, match=r"no \*\.safetensors weights; found \['pytorch_model.bin'\]"
        ):
            stage.base(source(params, str(mine)), data, prompt, out)
    # A failed build leaves no partial model, and an older one as it was.
    assert not (tmp_path / "o2").exists() and not list(tmp_path.glob(".o*"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before


def test_remote_code_is_off_by_default(params):
    assert params.base.trust_remote_code is False


def test_model_code_is_taken_only_when_trusted_and_the_output_is_not_its_own_source(
    project, tmp_path
):
    assert "*.py" not in stage.model_files(False) and "*.py" in stage.model_files(True)
    params = load_params(project / "params.yaml")
    out = tmp_path / "base"
    out.mkdir()
    with pytest.raises(ParamsError, match="is the output folder itself"):
        stage.base(source(params, str(out)), tmp_path / "unused", tmp_path / "unused", out)
