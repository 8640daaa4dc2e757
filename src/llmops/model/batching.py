"""Length-grouped batches: examples of similar length share a batch, so little is padding.

Each epoch takes every example or, given `groups` (an example's input, when an input has
several references), one example per group, drawn with (seed, epoch); it shuffles them
with (seed, epoch), cuts them into windows of
`batch_size * window` examples, sorts each window by length and slices it into batches,
then shuffles the batch order. The plan is a pure function of its inputs, which is what
lets a resumed run (and every process of a multi-process run) see the same batches.
Examples never attend to each other: each is its own row, padded on the right and masked.

`drop_prompt_tokens` is word dropout for training: each time an example is seen, a share
of its prompt tokens is left out, so the model cannot lean on one phrase of the prompt to
decide the answer and learns from all the words that carry it.
"""

from __future__ import annotations

import random

import torch

from llmops.model.tokenised import IGNORE, Example


def plan_batches(
    lengths: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    window: int = 64,
    groups: list[int] | None = None,
) -> list[list[int]]:
    """Example indices per batch for one epoch; with `groups` (each example's group), one
    example of each group."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    if groups is not None:  # drawn apart, so the shuffle below is the same as without groups
        members: dict[int, list[int]] = {}
        for i, group in enumerate(groups):
            members.setdefault(group, []).append(i)
        draw = random.Random(f"{seed}:{epoch}:draw")
        order = [draw.choice(indices) for indices in members.values()]
    rng.shuffle(order)
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def drop_prompt_tokens(example: Example, share: float, generator: torch.Generator) -> Example:
    """`example` with each prompt token left out with probability `share`.

    The answer (every labelled token) is kept whole, and so are the prompt's first token
    and its last, after which the answer starts. `share` 0 returns the example as it is.
    """
    if share <= 0:
        return example
    prompt = sum(1 for label in example.labels if label == IGNORE)
    keep = (torch.rand(len(example.input_ids), generator=generator) >= share).tolist()
    keep[0] = True
    keep[max(prompt - 1, 0) :] = [True] * (len(keep) - max(prompt - 1, 0))
    return Example(
        id=example.id,
        input_ids=tuple(t for t, k in zip(example.input_ids, keep, strict=True) if k),
        labels=tuple(t for t, k in zip(example.labels, keep, strict=True) if k),
        weight=example.weight,
    )


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (IGNORE on padding), plus each
    row's loss weight when any example's differs from 1."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if any(e.weight != 1.0 for e in examples):
        batch["weights"] = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    return batch
