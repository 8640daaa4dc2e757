"""The offline `tiny` base model: a byte-level BPE tokenizer and a small Llama, built from data.

Used by the base stage when `base.model` is `tiny`, and by the tests (with a smaller
recipe) to get a real model and tokenizer in-process without any network:

    tokenizer = build_tokenizer(texts, vocab_size=512)
    model = build_model(recipe, tokenizer)
    pretrain(model, tokenizer, documents, recipe)

Pretraining is plain next-token prediction on documents joined by end-of-sequence tokens
and cut into fixed-length blocks (no padding at all; standard for pretraining).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

import torch

from llmops.config.params import TinyParams

log = logging.getLogger(__name__)

SPECIAL = {"pad_token": "<|pad|>", "bos_token": "<|bos|>", "eos_token": "<|eos|>"}
# A plain chat template, so that a chat prompt (header `format: chat`) works with `tiny`
# too: each turn is its role in <|...|> on a line, then its content.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer (any text encodes, nothing maps to unknown)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=1 << 30, **SPECIAL)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(recipe: TinyParams, tokenizer):
    """A freshly initialised Llama causal LM of the recipe's shape (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if recipe.hidden_size % recipe.heads:
        raise ValueError(
            f"base.tiny.hidden_size {recipe.hidden_size} must be divisible by "
            f"base.tiny.heads {recipe.heads}"
        )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=recipe.context_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(recipe.seed)
    return LlamaForCausalLM(config)


def blocks(tokenizer, documents: list[str], length: int) -> torch.Tensor:
    """Documents joined by EOS and cut into rows of `length` tokens (the tail is dropped)."""
    stream: list[int] = []
    for doc in documents:
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    rows = len(stream) // length
    if rows == 0:
        raise ValueError(f"pretraining text has {len(stream)} tokens, less than one block")
    return torch.tensor(stream[: rows * length]).view(rows, length)


def pretrain(model, tokenizer, documents: list[str], recipe: TinyParams) -> dict:
    """Train all weights for `recipe.steps` steps; returns loss and throughput figures."""
    data = blocks(tokenizer, documents, recipe.block_length)
    generator = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.1)

    def scale(step: int) -> float:  # linear warm-up, then cosine decay to 10%
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, scale)
    model.train()
    start, losses, order = time.perf_counter(), [], torch.empty(0, dtype=torch.long)
    for step in range(recipe.steps):
        if len(order) < recipe.batch_size:  # a new pass over the blocks, reshuffled
            order = torch.randperm(len(data), generator=generator)
        batch, order = data[order[: recipe.batch_size]], order[recipe.batch_size :]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 25 == 0 or step == recipe.steps - 1:
            log.info("pretrain step %d/%d loss %.3f", step + 1, recipe.steps, losses[-1])
    seconds = time.perf_counter() - start
    model.eval()
    tokens = recipe.steps * recipe.batch_size * recipe.block_length
    return {
        "final_loss": sum(losses[-10:]) / len(losses[-10:]),
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "epochs": tokens / data.numel(),
    }
