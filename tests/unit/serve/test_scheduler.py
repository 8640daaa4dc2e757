"""Iteration-level scheduling on the tiny project's real model: whatever the arrival order,
greedy tokens equal the eval path's, rows join and leave between steps, each job keeps its
own limit, the cases it cannot serve go through eval's path, and a failing step fails
only the jobs in it."""

from __future__ import annotations

import dataclasses

import pytest

from llmops.config.params import load_params
from llmops.config.prompts import prompt_ids
from llmops.config.task import Task
from llmops.model.inference import TaskModel
from llmops.model.tokenised import read_split
from llmops.serve.scheduler import Scheduler


@pytest.fixture(scope="module")
def model(project, adapter) -> TaskModel:
    params = load_params(project / "params.yaml")
    return TaskModel.load(project / "models" / "base", adapter, Task.from_params(params.task))


@pytest.fixture(scope="module")
def decoding(project):
    return load_params(project / "params.yaml").decoding


@pytest.fixture(scope="module")
def ids(project, model) -> list[list[int]]:
    rows = read_split(project / "data" / "prepared" / "test.jsonl")[:24]
    return [prompt_ids(model.tokenizer, p) for p in model.prompts(rows)]


def texts(model, ids, generated) -> list[tuple[str, int]]:
    return [(g.text, g.new_tokens) for g in map(model.finish, generated, map(len, ids))]


def run(scheduler: Scheduler, arrivals: list[list[tuple[list[int], int]]]) -> list:
    """Submit each wave of (ids, limit) between steps; step until all are done."""
    futures = []
    for wave in arrivals:
        futures += [scheduler.submit(i, limit) for i, limit in wave]
        scheduler.step()
    while scheduler.step():
        pass
    return [f.result() for f in futures]


def test_greedy_tokens_equal_the_eval_path_whatever_the_arrival(model, decoding, ids):
    expected = texts(model, ids, model.generate_ids(ids, decoding, 16))
    rows: list[int] = []
    scheduler = Scheduler(model, decoding, max_rows=8, observe=rows.append)
    limit = decoding.max_new_tokens
    waves = [[(i, limit) for i in ids[:5]], [], [(i, limit) for i in ids[5:15]], [],
             [(i, limit) for i in ids[15:]]]  # fmt: skip
    assert texts(model, ids, run(scheduler, waves)) == expected
    assert scheduler.continuous and max(rows) == 8 and len(set(rows)) > 2  # joined and left
    assert not scheduler.busy()


def test_each_job_keeps_its_own_limit(model, decoding, ids):
    limits = [1, 3, 7, decoding.max_new_tokens]
    scheduler = Scheduler(model, decoding, max_rows=4)
    generated = run(scheduler, [list(zip(ids[:4], limits, strict=True))])
    for tokens, limit, prompt in zip(generated, limits, ids[:4], strict=True):
        alone = model.generate_ids([prompt], decoding, 1, [limit])[0]
        assert model.finish(tokens, 0).text == model.finish(alone, 0).text
        assert len(tokens) <= limit


def test_sampling_and_logits_processors_go_through_the_eval_path(model, decoding, ids):
    sampled = dataclasses.replace(decoding, do_sample=True)
    assert not Scheduler(model, sampled, max_rows=4).continuous
    config = model.model.generation_config
    config.repetition_penalty = 1.3
    try:
        scheduler = Scheduler(model, decoding, max_rows=4)
        assert not scheduler.continuous
        expected = model.generate_ids(ids[:3], decoding, 3)
        assert run(scheduler, [[(i, decoding.max_new_tokens) for i in ids[:3]]]) == expected
    finally:
        config.repetition_penalty = None


def test_a_failing_step_fails_its_jobs_and_the_next_ones_are_served(model, decoding, ids):
    scheduler = Scheduler(model, decoding, max_rows=4)
    bad = scheduler.submit([10**9], 5)  # an id past the vocabulary: the forward pass raises
    good = scheduler.submit(ids[0], 5)
    while scheduler.step():
        pass
    assert isinstance(bad.exception(), Exception) and good.exception() is not None
    later = run(scheduler, [[(ids[0], 5)]])
    assert later == [model.generate_ids([ids[0]], decoding, 1, [5])[0][: len(later[0])]]


def test_a_cancelled_caller_leaves_without_failing_its_neighbours(model, decoding, ids):
    scheduler = Scheduler(model, decoding, max_rows=4)
    futures = [scheduler.submit(i, decoding.max_new_tokens) for i in ids[:3]]
    scheduler.step()  # all three prefilled and running
    assert futures[1].cancel()  # as asyncio does when a request times out
    while scheduler.step():
        pass
    expected = texts(model, [ids[0], ids[2]], model.generate_ids([ids[0], ids[2]], decoding, 2))
    assert texts(model, [ids[0], ids[2]], [futures[0].result(), futures[2].result()]) == expected


def test_a_retry_runs_alone_and_its_failure_touches_no_running_row(model, decoding, ids):
    scheduler = Scheduler(model, decoding, max_rows=4)
    running = scheduler.submit(ids[0], decoding.max_new_tokens)
    scheduler.step()
    bad = scheduler.submit([10**9], 5, alone=True)  # fails in a step of its own
    good = scheduler.submit(ids[1], 5, alone=True)
    while scheduler.step():
        pass
    assert (
        bad.exception() is not None
        and good.result() == model.generate_ids([ids[1]], decoding, 1, [5])[0]
    )
    assert texts(model, ids[:1], [running.result()]) == texts(
        model, ids[:1], model.generate_ids(ids[:1], decoding, 1)
    )


def test_a_model_that_does_not_fill_the_cache_is_generated_through_eval_path(model, decoding, ids):
    """Fault injection: a forward pass that ignores the cache it is given, as remote code
    that only knows `past_key_values` would."""
    scheduler = Scheduler(model, decoding, max_rows=4)
    scheduler._forward = lambda ids_, mask, positions, cache: ids_[:, -1]  # cache left empty
    generated = run(scheduler, [[(i, decoding.max_new_tokens) for i in ids[:3]]])
    assert not scheduler.continuous
    assert generated == model.generate_ids(ids[:3], decoding, 3)
