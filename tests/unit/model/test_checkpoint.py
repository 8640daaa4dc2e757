"""Checkpoints: written atomically, found by fingerprint, older ones and partial writes
ignored or removed."""

from __future__ import annotations

import torch

from llmops.model import checkpoint


def test_save_then_latest_restores_weights_and_state(tmp_path):
    weights = {"layer.lora_A": torch.arange(6.0).view(2, 3)}
    checkpoint.save(tmp_path, 12, weights, {"step": 12, "train": [[5, 2.5]]}, "fp")
    found = checkpoint.latest(tmp_path, "fp")
    assert found.step == 12 and found.path.name == "step-000012"
    torch.testing.assert_close(found.weights()["layer.lora_A"], weights["layer.lora_A"])
    assert found.state() == {"step": 12, "train": [[5, 2.5]]}


def test_only_the_newest_checkpoint_is_kept(tmp_path):
    for step in (4, 8):
        checkpoint.save(tmp_path, step, {"w": torch.ones(1) * step}, {"step": step}, "fp")
    assert [p.name for p in tmp_path.iterdir()] == ["step-000008"]


def test_a_partial_write_or_another_fingerprint_is_not_resumed(tmp_path):
    checkpoint.save(tmp_path, 4, {"w": torch.ones(1)}, {"step": 4}, "fp")
    (tmp_path / ".step-000008.partial").mkdir()  # a run killed while writing step 8
    (tmp_path / "step-000009").mkdir()  # no fingerprint file: not a complete checkpoint
    assert checkpoint.latest(tmp_path, "fp").step == 4
    assert checkpoint.latest(tmp_path, "other") is None
    checkpoint.clear(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["README.txt"]


def test_fingerprint_follows_config_and_file_contents(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("a\n")
    first = checkpoint.fingerprint({"lr": 0.1}, [data])
    assert checkpoint.fingerprint({"lr": 0.1}, [data]) == first
    assert checkpoint.fingerprint({"lr": 0.2}, [data]) != first
    (data / "train.jsonl").write_text("b\n")
    assert checkpoint.fingerprint({"lr": 0.1}, [data]) != first
