"""The task declaration in the form the stages use: fields by kind, the answer's JSON format
and its parsing (partial, malformed and wrong-typed answers are results, not errors), and
the variables a prompt may use."""

from __future__ import annotations

import json

import pytest

ROW = {"id": "R1", "text": "Great lamp", "topic": "quality", "sentiment": "positive",
       "summary": "Happy with the quality."}  # fmt: skip


def test_fields_by_role_and_kind(task):
    assert [f.name for f in task.inputs] == ["text"]
    assert [f.name for f in task.outputs] == ["topic", "sentiment", "summary"]
    assert [f.name for f in task.labels] == ["topic", "sentiment"]
    assert [f.name for f in task.texts] == ["summary"]
    assert task.field("sentiment").ordered and not task.field("topic").ordered


def test_answer_is_json_with_the_output_fields_in_declared_order(task):
    text = task.answer_text(ROW)
    assert text == (
        '{"topic": "quality", "sentiment": "positive", "summary": "Happy with the quality."}'
    )
    assert json.loads(text) == task.answer(ROW)
    assert "text" not in task.answer(ROW) and "id" not in task.answer(ROW)


def test_a_complete_answer_parses_as_valid(task):
    parsed = task.parse_answer("  " + task.answer_text(ROW) + "\n")
    assert parsed.valid and parsed.error == ""
    assert parsed.fields == task.answer(ROW)


@pytest.mark.parametrize(
    ("text", "valid", "topic", "error"),
    [
        ('{"topic": "price", "sentiment": "neutral"', False, None, "not JSON"),  # cut off
        ('{"topic": "price"}', False, "price", "missing or non-string: sentiment, summary"),
        ('{"topic": "price", "sentiment": 3, "summary": "x"}', False, "price", "sentiment"),
        ('["price", "neutral"]', False, None, "not a JSON object: list"),
        ("Sure! The topic is price", False, None, "not JSON"),
        ("", False, None, "not JSON"),
        ("[" * 100_000, False, None, "not JSON"),
        (
            '{"topic": "nonsense", "sentiment": "neutral", "summary": ""}',
            False,
            None,
            "not a declared label: topic",
        ),  # an undeclared label is never a valid answer
        ('{"topic": "Price", "sentiment": "neutral", "summary": ""}', False, None, "topic"),
    ],
)
def test_malformed_and_partial_answers_are_results(task, text, valid, topic, error):
    parsed = task.parse_answer(text)
    assert parsed.valid is valid
    assert parsed.fields["topic"] == topic
    assert set(parsed.fields) == {"topic", "sentiment", "summary"}
    assert error in parsed.error


def test_prompt_variables_are_the_inputs_and_every_label_fields_values(task):
    assert task.variables() == ("text", "topic_values", "sentiment_values")
    assert task.prompt_variables(ROW) == {
        "text": "Great lamp",
        "topic_values": ["price", "quality", "delivery", "service"],
        "sentiment_values": ["negative", "neutral", "positive"],
    }
