"""The inference path shared by eval and the service: the adapter's template, batched
left-padded generation equal to one-at-a-time generation, and parse failures as results."""

from __future__ import annotations

import dataclasses

import pytest

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.model.inference import TaskModel
from llmops.model.tokenised import read_split


@pytest.fixture(scope="module")
def setup(project, adapter):
    params = load_params(project / "params.yaml")
    task = Task.from_params(params.task)
    model = TaskModel.load(project / "models" / "base", adapter, task)
    rows = read_split(project / "data" / "prepared" / "test.jsonl")
    decoding = dataclasses.replace(params.decoding, max_new_tokens=24)
    return model, rows, decoding


def test_prompt_comes_from_the_template_saved_with_the_adapter(setup, adapter):
    model, rows, _ = setup
    assert model.template.path == adapter / "prompt.jinja"
    prompt = model.prompts([{"text": rows[0]["text"]}])[0]
    assert rows[0]["text"] in prompt.text and prompt.text.endswith("Answer:\n")


def test_batched_generation_equals_one_at_a_time(setup):
    # Batches of 5 over 12 prompts of different lengths: padding on the left, and the
    # outputs come back in input order, identical to generating each prompt alone.
    model, rows, decoding = setup
    prompts = model.prompts(rows[:12])
    batched = model.generate(prompts, decoding, batch_size=5)
    alone = [model.generate([p], decoding, batch_size=1)[0] for p in prompts]
    assert batched == alone
    assert all(0 < n <= 24 for _, n in batched)


def test_left_padding_puts_real_tokens_last(setup):
    model, _, _ = setup
    batch = model._left_pad([[5, 6, 7], [8]])
    pad = model.tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, 7], [pad, pad, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_a_half_trained_model_gives_parsed_results_not_exceptions(setup):
    model, rows, decoding = setup
    answers = model.answer(rows[:4], dataclasses.replace(decoding, max_new_tokens=6))
    assert len(answers) == 4
    for answer in answers:  # 6 tokens cannot hold a full answer: invalid, with the reason
        assert answer.parsed.valid is False and answer.parsed.error
        assert set(answer.parsed.fields) == {"topic", "sentiment", "summary"}


def test_a_chat_template_goes_through_the_same_path(setup, project, adapter, tmp_path):
    # The tiny tokenizer carries a chat template: a chat prompt is tokenized by it, the same
    # ids training would use, and generation runs on them.
    from llmops.config.prompts import prompt_ids
    from llmops.model.tokenised import encode
    from tests.unit.config.test_prompts import CHAT

    model, rows, decoding = setup
    chat = tmp_path / "chat.jinja"
    chat.write_text(CHAT)
    chatty = TaskModel.load(project / "models" / "base", adapter, model.task, template=chat)
    prompts = chatty.prompts(rows[:3])
    assert all(p.is_chat for p in prompts)
    ids = prompt_ids(chatty.tokenizer, prompts[0])
    trained = encode(chatty.tokenizer, prompts[0], model.task.answer_text(rows[0]))
    assert list(trained.input_ids[: len(ids)]) == ids
    assert chatty.tokenizer.decode(ids).endswith(f"<|user|>\n{rows[0]['text']}\n<|assistant|>\n")
    batched = chatty.generate(prompts, decoding, batch_size=3)
    assert batched == [chatty.generate([p], decoding, batch_size=1)[0] for p in prompts]


def test_per_prompt_limits_equal_generating_with_each_limit_alone(setup):
    # The service batches requests that ask for different max_tokens: each row is cut to
    # its own limit, which with greedy decoding is what generating with that limit gives.
    model, rows, decoding = setup
    prompts = model.prompts(rows[:4])
    limits = [3, 24, 9, 1]
    mixed = model.complete(prompts, decoding, batch_size=4, limits=limits)
    for prompt, limit, got in zip(prompts, limits, mixed, strict=True):
        alone = model.complete([prompt], dataclasses.replace(decoding, max_new_tokens=limit), 1)
        assert got == alone[0]
        assert got.new_tokens <= limit and got.prompt_tokens > 0
        assert got.finished == (got.new_tokens < limit)


def test_streaming_yields_pieces_that_add_up_to_the_whole_answer(setup):
    model, rows, decoding = setup
    prompt = model.prompts(rows[:1])[0]
    pieces = list(model.stream(prompt, decoding))
    *texts, final = pieces
    assert all(isinstance(t, str) for t in texts) and len(texts) > 1
    assert "".join(texts) == final.text
    assert final == model.complete([prompt], decoding, 1)[0]
