"""Resumable training checkpoints that survive `kill -9`.

A checkpoint is a directory `step-000040/` holding the trainable weights (safetensors) and
the loop state (optimizer, schedule, RNG, loss history, MLflow run id) in `state.pt`,
read back with `weights_only=True`. It is written under a temporary name and renamed into
place, so a run killed mid-write leaves either the previous checkpoint or the new one,
never half of one. Each checkpoint carries a fingerprint of everything that determines the
run (params, data, base model, prompt); a checkpoint whose fingerprint differs is stale
and is not resumed from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk."""

    path: Path
    step: int

    def weights(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / "weights.safetensors")

    def state(self) -> dict[str, Any]:
        # map_location: a checkpoint written on a GPU resumes on any device.
        return torch.load(self.path / "state.pt", weights_only=True, map_location="cpu")


def fingerprint(config: dict, files: list[Path]) -> str:
    """Digest of a JSON-able config and the bytes of `files` (directories: every file in them)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for root in files:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file():
                digest.update(str(path.relative_to(root.parent)).encode())
                with path.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
    return digest.hexdigest()


def save(
    folder: Path, step: int, weights: dict[str, torch.Tensor], state: dict, stamp: str
) -> Path:
    """Write checkpoint `step` atomically and drop older ones; returns its path."""
    final = folder / f"{PREFIX}{step:06d}"
    partial = folder / f".{PREFIX}{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in weights.items()},
        partial / "weights.safetensors",
    )
    torch.save(state, partial / "state.pt")
    (partial / "fingerprint").write_text(stamp, encoding="utf-8")
    for path in partial.iterdir():  # contents on disk before the rename makes them visible
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in folder.glob(f"{PREFIX}*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest(folder: Path, stamp: str) -> Checkpoint | None:
    """The newest complete checkpoint made with this fingerprint, or None."""
    found = []
    for path in folder.glob(f"{PREFIX}*"):
        mark = path / "fingerprint"
        if mark.exists() and mark.read_text(encoding="utf-8") == stamp:
            found.append(Checkpoint(path, int(path.name.removeprefix(PREFIX))))
    return max(found, key=lambda c: c.step, default=None)


NOTE = "Resume points of the train stage while it runs; emptied when a run finishes.\n"


def clear(folder: Path) -> None:
    """Remove every checkpoint (and partial one); keep the folder, with a note on its use."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text(NOTE, encoding="utf-8")
    for path in folder.iterdir():
        if path.name.startswith((PREFIX, f".{PREFIX}")):
            shutil.rmtree(path, ignore_errors=True)
