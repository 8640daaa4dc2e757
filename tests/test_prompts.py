"""Prompt templates render strictly; the header must tell the truth about the variables."""

from __future__ import annotations

import json

import pytest

from llmops.prompts import PromptError, load_template, render_answer, render_prompt
from llmops.prompts import main as prompts_main


def make(tmp_path, text: str, name: str = "t.jinja"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repo_template_renders_labels_and_message(repo, params):
    template = load_template(repo / "prompts" / "triage.jinja")
    assert template.variables == ("message", "categories", "priorities")
    text = render_prompt(
        template,
        message="My card was charged twice",
        categories=list(params.task.categories),
        priorities=list(params.task.priorities),
    )
    assert "Ticket: My card was charged twice\nAnswer:\n" in text
    assert text.endswith("Answer:\n")
    assert "billing|refund|" in text and "low|medium|high|urgent" in text
    assert "variables:" not in text  # the header comment is not part of the prompt


def test_missing_variable_is_an_error_not_an_empty_prompt(tmp_path):
    template = load_template(make(tmp_path, "{#- variables: a, b -#}\n{{ a }} and {{ b }}\n"))
    assert render_prompt(template, a="x", b="y") == "x and y\n"
    with pytest.raises(
        PromptError, match=r"t.jinja: expected variables \['a', 'b'\]; missing \['b'\]"
    ):
        render_prompt(template, a="x")
    with pytest.raises(PromptError, match=r"unexpected \['c'\]"):
        render_prompt(template, a="x", b="y", c="z")


def test_undefined_attribute_raises(tmp_path):
    template = load_template(make(tmp_path, "{#- variables: a -#}\n{{ a.missing }}\n"))
    with pytest.raises(PromptError, match=r"t.jinja: .*missing"):
        render_prompt(template, a={})


def test_header_must_match_the_variables_used(tmp_path):
    with pytest.raises(
        PromptError, match=r"header declares \['a'\] but the template uses \['a', 'b'\]"
    ):
        load_template(make(tmp_path, "{#- variables: a -#}\n{{ a }}{{ b }}\n"))
    with pytest.raises(PromptError, match="first line must be a header"):
        load_template(make(tmp_path, "{{ a }}\n"))
    with pytest.raises(PromptError, match=r"t.jinja:2: template syntax error"):
        load_template(make(tmp_path, "{#- variables: a -#}\n{{ a \n"))
    with pytest.raises(PromptError, match="prompt template not found"):
        load_template(tmp_path / "absent.jinja")


def test_templates_are_sandboxed(tmp_path):
    template = load_template(
        make(tmp_path, "{#- variables: a -#}\n{{ a.__class__.__mro__[1].__subclasses__() }}\n")
    )
    with pytest.raises(PromptError, match=r"t.jinja: access to attribute '__class__' .* is unsafe"):
        render_prompt(template, a="x")


def test_answer_is_json_with_fixed_key_order():
    text = render_answer("refund", "high", "We’ll refund ORD-123456 today.")
    assert (
        text
        == '{"category": "refund", "priority": "high", "reply": "We’ll refund ORD-123456 today."}'
    )
    assert json.loads(text)["reply"].startswith("We’ll")


def test_cli_renders_from_repo_params(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    prompts_main(["prompts/triage.jinja", "--message", "hello"])
    assert capsys.readouterr().out.endswith("Ticket: hello\nAnswer:\n")
