"""The worked example as a declaration: its prompt renders with its task, and the library
holds none of its names (the task is data; the example can be deleted)."""

from __future__ import annotations

import re

from llmops.config.prompts import load_template, render_prompt
from llmops.config.task import Task


def test_the_example_prompt_renders_its_labels_and_message(repo, params):
    task = Task.from_params(params.task)
    template = load_template(repo / params.task.prompt, task.variables())
    prompt = render_prompt(
        template, task.prompt_variables({"message": "My card was charged twice"})
    )
    assert prompt.text.endswith("Ticket: My card was charged twice\nAnswer:\n")
    assert "billing|refund|" in prompt.text and "low|medium|high|urgent" in prompt.text


def test_the_library_names_none_of_the_examples_fields(repo, params):
    # "message" is also an everyday word in code (log and error messages); the others are not.
    names = [n for n in (*params.task.inputs, *params.task.outputs) if n != "message"]
    pattern = re.compile(r"(" + "|".join(names) + r")", re.IGNORECASE)
    found = [
        f"{path.relative_to(repo)}:{n}: {line.strip()}"
        for path in sorted((repo / "src").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)
