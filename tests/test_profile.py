"""Params profiles (llmops.profile): a profile's keys replace params.yaml's, comments stay,
an unknown key or an invalid result leaves params.yaml as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmops.params import ParamsError, load_params
from llmops.profile import apply
from tests.synthetic import write_params

REPO = Path(__file__).resolve().parents[1]


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
