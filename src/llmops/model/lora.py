"""LoRA adapters (peft) and the answer-only training loss.

`AnswerLoss` runs the decoder over the whole sequence but projects to the vocabulary only
at the positions whose next token is an answer token: the prompt positions are masked
out of the loss anyway, so computing their logits (a vocabulary-wide matmul and softmax
per token) would be wasted work. It returns the summed loss and the token count, so the
caller decides how to average across micro-batches and processes. Given `weights` (one per
row, train.label_weights), each row's token losses count that many times in the sum.
Logit post-processing some architectures add in their own forward (Gemma soft capping,
Cohere and Granite logit scaling) is not reproduced: such models are refused with a clear
error rather than trained on a wrong loss. Llama, Qwen, SmolLM and Mistral have none.
"""

from __future__ import annotations

import torch

from llmops.config.params import LoraParams
from llmops.model.tokenised import IGNORE

UNSUPPORTED = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def attach(model: torch.nn.Module, params: LoraParams, seed: int) -> torch.nn.Module:
    """Wrap `model` with a freshly initialised (seeded) LoRA adapter; base weights frozen.

    `params.modules_to_save` are trained in full (a copy saved with the adapter). When the
    model ties its output matrix to the input embeddings, the copy stays tied, so training
    `embed_tokens` trains the output side too, as pretraining did.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=list(params.target_modules),
        modules_to_save=list(params.modules_to_save) or None,
        ensure_weight_tying=bool(params.modules_to_save) and tied(model),
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    return get_peft_model(model, config)


def tied(model: torch.nn.Module) -> bool:
    """Whether the model's output matrix is its input embedding matrix."""
    return bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's weights by parameter name (what a checkpoint stores)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy checkpointed adapter weights into `model`; names must match exactly."""
    params = trainable(model)
    if set(params) != set(weights):
        raise ValueError("checkpoint weights do not match the adapter's parameters")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)


class AnswerLoss(torch.nn.Module):
    """Summed next-token cross-entropy over answer tokens, and how many there were."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        config = getattr(model, "config", None)
        for name in UNSUPPORTED:
            if getattr(config, name, None) not in (None, 1, 1.0):
                raise ValueError(f"the base model's config sets {name}, which AnswerLoss skips")
        self.model = model  # a peft model (its base model carries the LoRA layers) or a plain LM

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        hidden = lm.get_decoder()(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE
        logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
        if weights is None:
            loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
        else:
            each = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="none")
            loss = (each * weights[:, None].expand_as(targets)[keep].float()).sum()
        return loss, keep.sum()
