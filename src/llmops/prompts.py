"""Prompt templates: the one place where prompt text and the answer format are assembled.

Templates are Jinja files under `prompts/` whose first comment names their variables:

    {#- variables: message, categories, priorities ... -#}

Rendering is strict: a variable missing from the call, or one the header does not declare,
is an error, never an empty prompt. Training, evaluation and the service (as those stages
arrive) all call `render_prompt`, so the text a model was trained on is the text it is
evaluated and served with. Render one by hand:

    python -m llmops.prompts prompts/triage.jinja --message "Where is order ORD-123456?"
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

HEADER = re.compile(r"\A\{#-?\s*variables:\s*([A-Za-z_][\w ,]*)")
ANSWER_KEYS = ("category", "priority", "reply")


class PromptError(ValueError):
    """A template that cannot be loaded or rendered; the message names the file."""


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template: its file, source text and declared variables."""

    path: Path
    source: str
    variables: tuple[str, ...]
    compiled: jinja2.Template


def _environment() -> SandboxedEnvironment:
    # Sandboxed because templates arrive in pull requests; StrictUndefined so that a
    # missing variable raises instead of rendering as "".
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


def load_template(path: Path | str) -> PromptTemplate:
    """Read a template, check that its header names exactly the variables it uses."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt template not found") from None
    header = HEADER.match(source)
    if not header:
        raise PromptError(f"{path}: first line must be a header '{{#- variables: a, b -#}}'")
    declared = tuple(v.strip() for v in header.group(1).split(",") if v.strip())
    env = _environment()
    try:
        used = meta.find_undeclared_variables(env.parse(source))
        compiled = env.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        raise PromptError(f"{path}:{err.lineno}: template syntax error: {err.message}") from None
    if set(declared) != used:
        raise PromptError(
            f"{path}: header declares {sorted(declared)} but the template uses {sorted(used)}"
        )
    return PromptTemplate(path=path, source=source, variables=declared, compiled=compiled)


def render_prompt(template: PromptTemplate, **variables: Any) -> str:
    """Render `template` with exactly its declared variables."""
    missing = [v for v in template.variables if v not in variables]
    extra = sorted(set(variables) - set(template.variables))
    if missing or extra:
        raise PromptError(
            f"{template.path}: expected variables {list(template.variables)}; "
            f"missing {missing}, unexpected {extra}"
        )
    try:
        return template.compiled.render(**variables)
    except jinja2.TemplateError as err:  # an absent attribute, a sandbox violation, ...
        raise PromptError(f"{template.path}: {err.message}") from None


def render_answer(category: str, priority: str, reply: str) -> str:
    """The target text the model learns to produce: one JSON object, keys in fixed order."""
    return json.dumps(
        dict(zip(ANSWER_KEYS, (category, priority, reply), strict=True)), ensure_ascii=False
    )


def main(argv: list[str] | None = None) -> None:
    from llmops.params import load_params

    parser = argparse.ArgumentParser(description="Render a prompt template for one message.")
    parser.add_argument("template", type=Path)
    parser.add_argument("--message", required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    task = load_params(args.params).task
    template = load_template(args.template)
    print(
        render_prompt(
            template,
            message=args.message,
            categories=list(task.categories),
            priorities=list(task.priorities),
        ),
        end="",
    )


if __name__ == "__main__":
    main()
