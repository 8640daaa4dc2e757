"""Load a base model (and optionally its LoRA adapter) safely, on the best device available.

One loader for the train and eval stages and the service: safetensors weights only,
`trust_remote_code` only when params say so, a clear error when a directory holds no
weights. `pick_device` chooses a CUDA GPU with bf16 when there is one, else the CPU in fp32.
`set_threads` sets torch's CPU thread count on purpose (each stage calls it in `main`):
`OMP_NUM_THREADS` when set, else the CPUs this process may use shared among the processes
of the run, so two DDP processes on two cores do not fight over four threads.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from llmops.config.params import LoraParams

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model directory or configuration that cannot be used; the message names it."""


@dataclass(frozen=True)
class Device:
    """Where to run and in which precision (autocast dtype; weights stay in fp32)."""

    device: torch.device
    dtype: torch.dtype

    @property
    def autocast(self) -> torch.autocast:
        enabled = self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)


def pick_device(precision: str = "auto", device: torch.device | None = None) -> Device:
    """`auto`: bf16 on a CUDA GPU that supports it, fp32 otherwise; or force fp32/bf16."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if precision == "auto":
        gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if gpu_bf16 else "fp32"
    return Device(device, torch.bfloat16 if precision == "bf16" else torch.float32)


def set_threads(processes: int = 1) -> int:
    """Set and return torch's intra-op thread count (see the module docstring)."""
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        threads = int(wanted)
    else:
        threads = max(1, len(os.sched_getaffinity(0)) // max(1, processes))
    if torch.get_num_threads() != threads:
        # Only when it differs: setting even the count torch already has re-partitions its
        # kernels' work, and the weights would differ in the last bits from a run that
        # did not set it.
        torch.set_num_threads(threads)
    log.info("torch uses %d CPU thread(s) per process", threads)
    return threads


def context_length(path: Path) -> int | None:
    """The longest sequence a model's config.json says it takes, or None if it does not say."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def weight_files(path: Path) -> list[Path]:
    """The safetensors weight files of a model directory, or a ModelError saying what is there."""
    if not path.is_dir():
        raise ModelError(f"{path}: model directory not found (run the base stage: dvc repro base)")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        other = sorted(p.name for p in path.glob("*") if p.suffix in {".bin", ".pt", ".pth"})
        found = f"; found {other}, which are not loaded (pickle can run code)" if other else ""
        raise ModelError(f"{path}: no *.safetensors weights{found}")
    if not (path / "config.json").exists():
        raise ModelError(f"{path}: config.json missing next to the weights")
    return files


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    """The tokenizer saved with a model; left padding for generation is set by the caller."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.eos_token_id is None:
        raise ModelError(f"{path}: the tokenizer has no end-of-sequence token")
    if tokenizer.pad_token_id is None:  # common for hub models; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(path: Path, trust_remote_code: bool = False, device: Device | None = None):
    """The base causal LM in `path` (fp32 weights), in eval mode, on `device`."""
    from transformers import AutoModelForCausalLM

    weight_files(path)
    model = AutoModelForCausalLM.from_pretrained(
        path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=torch.float32
    )
    if device is not None:
        model.to(device.device)
    return model.eval()


def linear_names(model: torch.nn.Module) -> list[str]:
    """Short names of the model's linear layers (what LoRA `target_modules` can name)."""
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _is_linear(m)}
    return sorted(names)


def _is_linear(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"  # GPT-2


def check_targets(model: torch.nn.Module, lora: LoraParams, path: Path) -> None:
    """Fail, listing what the model has, when a LoRA target or a module to save is missing."""
    have = set(linear_names(model))
    missing = [t for t in lora.target_modules if t not in have]
    if missing:
        raise ModelError(
            f"train.lora.target_modules: {missing} not in the model at {path}; "
            f"its linear layers are {sorted(have)}"
        )
    named = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in lora.modules_to_save if t not in named]
    if missing:
        raise ModelError(
            f"train.lora.modules_to_save: {missing} not in the model at {path}; "
            f"e.g. its embeddings are {embedding_names(model)}"
        )


def embedding_names(model: torch.nn.Module) -> list[str]:
    """Short names of the model's input and output embedding modules."""
    parts = (model.get_input_embeddings(), model.get_output_embeddings())
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m in parts})


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def read_card(path: Path) -> dict:
    """The base model's card.json (source, revision or recipe, parameter count)."""
    card = path / "card.json"
    return json.loads(card.read_text(encoding="utf-8")) if card.exists() else {}
