"""Length-grouped batching: every example once per epoch, reproducible from (seed, epoch),
and far less padding than batches drawn at random."""

from __future__ import annotations

import random

import torch

from llmops.model.batching import collate, drop_prompt_tokens, plan_batches
from llmops.model.tokenised import IGNORE, Example


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


def padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of the batch tensors' positions that are padding."""
    real = sum(lengths[i] for b in batches for i in b)
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / total


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


# --- token dropout ------------------------------------------------------------------------


def example(prompt: int = 200, answer: int = 12) -> Example:
    ids = tuple(range(1000, 1000 + prompt + answer))
    return Example("x", ids, (IGNORE,) * prompt + ids[prompt:])


def test_token_dropout_off_leaves_the_example_as_it_is():
    e = example()
    assert drop_prompt_tokens(e, 0.0, torch.Generator().manual_seed(0)) is e


def test_token_dropout_cuts_prompt_tokens_only_and_about_the_asked_share():
    e, g = example(), torch.Generator().manual_seed(0)
    kept = [drop_prompt_tokens(e, 0.3, g) for _ in range(200)]
    for k in kept:
        assert k.labels[-12:] == e.labels[-12:] and k.input_ids[-12:] == e.input_ids[-12:]
        assert k.answer_tokens == e.answer_tokens == 12
        assert k.input_ids[0] == e.input_ids[0]  # the prompt's first token
        assert k.input_ids[-13] == e.input_ids[-13]  # its last, before the answer
        assert set(k.input_ids) <= set(e.input_ids)
        assert list(k.input_ids) == sorted(k.input_ids)  # order kept
    dropped = sum(len(e.input_ids) - len(k.input_ids) for k in kept) / (200 * 198)
    assert 0.28 < dropped < 0.32


def test_token_dropout_is_a_function_of_the_generator_seed():
    e = example()
    one = drop_prompt_tokens(e, 0.3, torch.Generator().manual_seed(5))
    assert one == drop_prompt_tokens(e, 0.3, torch.Generator().manual_seed(5))
    assert one != drop_prompt_tokens(e, 0.3, torch.Generator().manual_seed(6))


def test_one_reference_per_input_is_drawn_each_epoch_and_all_are_seen_over_epochs():
    from llmops.config.params import FieldParams, TaskParams
    from llmops.config.task import Task
    from llmops.stages.train import input_groups

    groups = [0] * 8 + [1] * 3 + [2] + [3] * 4  # 4 inputs with 8, 3, 1 and 4 references
    sizes = [10 + i for i in range(len(groups))]
    seen: set[int] = set()
    for epoch in range(40):
        plan = plan_batches(sizes, 2, seed=5, epoch=epoch, groups=groups)
        drawn = sorted(i for batch in plan for i in batch)
        assert sorted(groups[i] for i in drawn) == [0, 1, 2, 3]  # one per input
        assert plan == plan_batches(sizes, 2, seed=5, epoch=epoch, groups=groups)
        seen |= set(drawn)
    assert seen == set(range(len(groups)))  # every reference comes up over the epochs
    assert sum(map(len, plan_batches(sizes, 2, 5, 0))) == len(groups)  # all: every row
    alone = list(range(len(sizes)))  # one row per input: the same plan either way
    assert plan_batches(sizes, 2, 5, 3, groups=alone) == plan_batches(sizes, 2, 5, 3)
    rows = [{"text": t} for t in ("Pub by river", "pub  by RIVER", "cafe", "Pub by river")]
    text = FieldParams("text")
    task = Task.from_params(TaskParams("p.jinja", {"text": text}, {"summary": text}))
    assert input_groups(rows, task) == [0, 0, 1, 0]


def test_collate_adds_row_weights_only_when_one_differs_from_one():
    plain = [Example("a", (1, 2, 3), (IGNORE, 2, 3)), Example("b", (4, 5), (IGNORE, 5))]
    assert "weights" not in collate(plain, pad_id=0)
    weighted = [plain[0], Example("b", (4, 5), (IGNORE, 5), weight=2.5)]
    assert collate(weighted, pad_id=0)["weights"].tolist() == [1.0, 2.5]
    dropped = drop_prompt_tokens(weighted[1], 0.5, torch.Generator().manual_seed(0))
    assert dropped.weight == 2.5
