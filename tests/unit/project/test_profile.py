"""Params profiles (llmops.project.profile): a profile's keys replace params.yaml's, comments stay,
an unknown key or an invalid result leaves params.yaml as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmops.config.params import ParamsError, load_params
from llmops.project.profile import apply, main
from tests.synthetic import write_params

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def params(tmp_path) -> Path:
    """The tests' own params file, with a comment on a key and a list on one line."""
    path = write_params(tmp_path / "params.yaml")
    text = path.read_text().replace("\n  learning_rate: 0.003\n",
                                    "\n  learning_rate: 0.003  # peak rate\n", 1)  # fmt: skip
    path.write_text(text)
    return path


def test_the_gpu_profile_applies_and_loads(params):
    apply(REPO / "profiles" / "gpu.yaml", params)
    loaded = load_params(params)
    assert loaded.base.model.startswith("HuggingFaceTB/") and loaded.base.revision
    assert "lm_head" not in loaded.train.lora.target_modules and loaded.train.max_steps is None
    text = params.read_text()
    assert re.search(r"^  learning_rate: 0.0002 +# peak rate$", text, re.M)  # comments kept
    assert "target_modules: [q_proj" in text  # lists stay on one line


def test_an_unknown_key_changes_nothing(params, tmp_path):
    before = params.read_text()
    (tmp_path / "p.yaml").write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(ParamsError, match=r"train\.learning_rat: not a key"):
        apply(tmp_path / "p.yaml", params)
    assert params.read_text() == before


def test_an_invalid_result_changes_nothing(params, tmp_path):
    before = params.read_text()
    (tmp_path / "p.yaml").write_text("prep:\n  val_fraction: 0.9\n")
    with pytest.raises(ParamsError, match=r"prep\.val_fraction"):
        apply(tmp_path / "p.yaml", params)
    assert params.read_text() == before and not list(tmp_path.glob("*.tmp"))


def test_a_profile_reads_numbers_as_params_yaml_does(params, tmp_path):
    # 3e-4 is a float in YAML 1.2 (DVC, load_params) but a string to PyYAML's safe_load.
    (tmp_path / "p.yaml").write_text("train:\n  learning_rate: 3e-4\n  weight_decay: 1e-2\n")
    apply(tmp_path / "p.yaml", params)
    loaded = load_params(params).train
    assert loaded.learning_rate == pytest.approx(3e-4) and loaded.weight_decay == 0.01
    assert re.search(r"^  learning_rate: 0.0003 +# peak rate$", params.read_text(), re.M)
    params.write_text(params.read_text().replace("learning_rate: 0.0003", "learning_rate: 1e-5"))
    (tmp_path / "p.yaml").write_text("train:\n  epochs: 2\n")
    apply(tmp_path / "p.yaml", params)  # params.yaml's own 1e-5 survives the round trip
    assert load_params(params).train.learning_rate == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("profile", "params_text", "message"),
    [
        ("train: [\n", None, "p.yaml: not valid YAML: "),
        ("- 1\n", None, "p.yaml: expected a mapping of params sections"),
        ("train:\n  epochs: 2\n  epochs: 3\n", None, "p.yaml: not valid YAML: duplicate key 'epochs'"),
        ("train:\n  epochs: 2\n", "- 1\n", "params.yaml: expected a mapping of params sections"),
        ("train:\n  epochs: 2\n", b"seed: caf\xe9\n", "params.yaml: not UTF-8 (byte 0xe9 at line 1, column 10)"),
        ("train:\n  learning_rate: .nan\n", None, "train.learning_rate: expected a finite float"),
    ],
)  # fmt: skip
def test_a_broken_profile_or_params_file_is_one_line(
    params, tmp_path, profile, params_text, message
):
    (tmp_path / "p.yaml").write_text(profile)
    if isinstance(params_text, bytes):
        params.write_bytes(params_text)
    elif params_text is not None:
        params.write_text(params_text)
    before = params.read_bytes()
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "p.yaml"), "--params", str(params)])
    assert message in str(stopped.value) and "\n" not in str(stopped.value)
    assert params.read_bytes() == before
