"""How many steps a run plans, and which bound sets them."""

from __future__ import annotations

import dataclasses

import pytest

from llmops.model.trainer import schedule_length


@pytest.fixture
def cfg(params):
    return dataclasses.replace(params.train, epochs=3, token_budget=None, max_steps=None)


def test_epochs_bound_when_nothing_else_is_set(cfg):
    assert schedule_length(cfg, per_epoch=50, tokens_per_step=1000.0) == (150, "epochs")


def test_the_token_budget_cuts_a_large_dataset_short(cfg):
    budgeted = dataclasses.replace(cfg, token_budget=100_000)
    # 100 000 tokens at 1 000 a step: 100 steps, fewer than 3 epochs of 50 000 steps.
    assert schedule_length(budgeted, 50_000, 1000.0) == (100, "token_budget")
    # A small dataset trains its epochs within the same budget.
    assert schedule_length(budgeted, 20, 1000.0) == (60, "epochs")
    # The budget never rounds a run down to nothing.
    assert schedule_length(dataclasses.replace(cfg, token_budget=10), 20, 1000.0)[0] == 1


def test_max_steps_caps_both_and_ties_go_to_epochs(cfg):
    capped = dataclasses.replace(cfg, token_budget=100_000, max_steps=30)
    assert schedule_length(capped, 50, 1000.0) == (30, "max_steps")
    assert schedule_length(dataclasses.replace(cfg, max_steps=150), 50, 1.0) == (150, "epochs")
