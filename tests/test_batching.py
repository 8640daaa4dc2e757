"""Length-grouped batching: every example once per epoch, reproducible from (seed, epoch),
and far less padding than batches drawn at random."""

from __future__ import annotations

import random

import torch

from llmops.batching import collate, padding_share, plan_batches
from llmops.examples import IGNORE, Example


def lengths(n: int = 2000, seed: int = 0) -> list[int]:
    # Shaped like the sample data: a fixed prompt prefix plus a spread of message lengths.
    rng = random.Random(seed)
    return [90 + int(rng.lognormvariate(3.5, 0.45)) for _ in range(n)]


def test_each_example_once_per_epoch_in_batches_of_the_asked_size():
    sizes = lengths(1003)
    batches = plan_batches(sizes, batch_size=16, seed=1, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1003))
    assert sum(len(b) < 16 for b in batches) <= 2  # only window tails run short


def test_the_plan_is_a_function_of_seed_and_epoch():
    sizes = lengths()
    assert plan_batches(sizes, 16, 7, 3) == plan_batches(sizes, 16, 7, 3)
    assert plan_batches(sizes, 16, 7, 3) != plan_batches(sizes, 16, 7, 4)
    assert plan_batches(sizes, 16, 7, 3) != plan_batches(sizes, 16, 8, 3)


def test_grouping_by_length_wastes_far_less_than_random_batches():
    sizes = lengths()
    order = list(range(len(sizes)))
    random.Random(0).shuffle(order)
    at_random = [order[i : i + 16] for i in range(0, len(order), 16)]
    grouped = plan_batches(sizes, 16, seed=0, epoch=0)
    assert padding_share(at_random, sizes) > 0.15
    assert padding_share(grouped, sizes) < 0.01


def test_collate_pads_right_and_masks_padding_out_of_the_loss():
    a = Example("a", (5, 6, 7, 8), (IGNORE, IGNORE, 7, 8))
    b = Example("b", (5, 6), (IGNORE, 6))
    batch = collate([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [5, 6, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7, 8], [IGNORE, 6, IGNORE, IGNORE]]
    assert batch["input_ids"].dtype == torch.long
