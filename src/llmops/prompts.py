"""Prompt templates: the one place where prompt text is assembled and turned into tokens.

Templates are Jinja files under `prompts/` whose first comment names the variables they use
and, optionally, their format:

    {#- variables: text, label_values
        format: chat
        ... (free text: what each variable holds) -#}

A template may use any variable the task provides (`llmops.task.Task.variables`: the input
fields and, for each label field F, `F_values`); the header must list exactly the ones it
uses. Rendering is sandboxed and strict: an undefined variable is an error, never an empty
prompt.

Two formats:
- `completion` (default): the rendered text is the prompt; the answer follows it. Right
  for base models such as `tiny`.
- `chat`: the rendered text is a conversation. A line holding only `system:`, `user:` or
  `assistant:` starts a turn; the tokenizer's own chat template turns the turns into
  tokens, with the generation prompt for the assistant's answer. Right for instruct
  models from the hub.

Training, evaluation and serving all call `render_prompt` and `prompt_ids`, so a model is
evaluated and served with exactly the tokens it was trained on. Render one by hand:

    python -m llmops.prompts --input text="Where is my parcel?"   (one --input per input field)
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

HEADER = re.compile(r"\A\{#-?\s*variables:\s*([A-Za-z_][\w ,]*)(?P<rest>.*?)-?#\}", re.S)
FORMAT = re.compile(r"^\s*format:\s*(\S+)\s*$", re.M)
FORMATS = ("completion", "chat")
ROLE = re.compile(r"^(system|user|assistant):[ \t]*$", re.M)


class PromptError(ValueError):
    """A template that cannot be loaded or rendered; the message names the file."""


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template: its file, source text, declared variables and format."""

    path: Path
    source: str
    variables: tuple[str, ...]
    format: str
    compiled: jinja2.Template


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: plain text (completion) or conversation turns (chat)."""

    text: str = ""
    messages: tuple[dict[str, str], ...] = ()

    @property
    def is_chat(self) -> bool:
        return bool(self.messages)


def _environment() -> SandboxedEnvironment:
    # Sandboxed because templates arrive in pull requests; StrictUndefined so that a
    # missing variable raises instead of rendering as "".
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


def load_template(path: Path | str, available: tuple[str, ...] | None = None) -> PromptTemplate:
    """Read a template and check its header: it names exactly the variables the template
    uses, and (when `available` is given) only variables the task provides."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt template not found") from None
    header = HEADER.match(source)
    if not header:
        raise PromptError(f"{path}: first line must be a header '{{#- variables: a, b -#}}'")
    declared = tuple(v.strip() for v in header.group(1).split(",") if v.strip())
    fmt = FORMAT.search(header.group("rest"))
    form = fmt.group(1) if fmt else "completion"
    if form not in FORMATS:
        raise PromptError(f"{path}: header format {form!r}; expected one of {list(FORMATS)}")
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
    unknown = [v for v in declared if available is not None and v not in available]
    if unknown:
        raise PromptError(
            f"{path}: the template uses {unknown}, which the task does not provide; "
            f"available: {list(available or ())} (params.yaml task)"
        )
    if form == "chat" and not ROLE.search(source):
        raise PromptError(f"{path}: a chat template needs turns: lines 'system:' or 'user:'")
    return PromptTemplate(path, source, declared, form, compiled)


def render_prompt(template: PromptTemplate, variables: Mapping[str, Any]) -> Prompt:
    """Render `template` with the variables it declares, taken from `variables`."""
    missing = [v for v in template.variables if v not in variables]
    if missing:
        raise PromptError(
            f"{template.path}: variables {missing} not given; available: {list(variables)}"
        )
    try:
        text = template.compiled.render(**{v: variables[v] for v in template.variables})
    except jinja2.TemplateError as err:  # an absent attribute, a sandbox violation, ...
        raise PromptError(f"{template.path}: {err.message}") from None
    if template.format == "completion":
        return Prompt(text=text)
    return Prompt(messages=_turns(template, text, {v: variables[v] for v in template.variables}))


def _blank(value: Any) -> Any:
    """The value with every string replaced by "x" (same shape, no line breaks)."""
    if isinstance(value, str):
        return "x"
    if isinstance(value, Mapping):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_blank(v) for v in value]
    return value


def _turns(template: PromptTemplate, text: str, used: dict) -> tuple[dict[str, str], ...]:
    parts = ROLE.split(text)  # [before, role, content, role, content, ...]
    # The turns the template itself makes: rendered with values that cannot hold a role line.
    expected = len(ROLE.findall(template.compiled.render(**_blank(used))))
    if expected != (len(parts) - 1) // 2:
        # A value rendered a role line of its own: it must not add turns to the conversation.
        raise PromptError(f"{template.path}: a variable's value holds a line like 'user:'")
    if parts[0].strip():
        raise PromptError(f"{template.path}: text before the first 'system:'/'user:' line")
    return tuple(
        {"role": role, "content": content.strip()}
        for role, content in zip(parts[1::2], parts[2::2], strict=True)
    )


def prompt_ids(tokenizer, prompt: Prompt) -> list[int]:
    """The prompt's token ids, as training, evaluation and serving all tokenize it."""
    if not prompt.is_chat:
        return tokenizer(prompt.text, add_special_tokens=True)["input_ids"]
    if not getattr(tokenizer, "chat_template", None):
        raise PromptError(
            "a chat template (header 'format: chat') needs a tokenizer with a chat template; "
            "this base model's tokenizer has none: use a completion template"
        )
    ids = tokenizer.apply_chat_template(
        list(prompt.messages), add_generation_prompt=True, tokenize=True
    )
    return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)


def prompt_text(tokenizer, prompt: Prompt) -> str:
    """The prompt as the text the model reads (a chat prompt through the chat template)."""
    if not prompt.is_chat:
        return prompt.text
    return tokenizer.apply_chat_template(
        list(prompt.messages), add_generation_prompt=True, tokenize=False
    )


def main(argv: list[str] | None = None) -> None:
    from llmops.params import load_params
    from llmops.task import Task

    parser = argparse.ArgumentParser(description="Render the task's prompt template for one row.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--template", type=Path, help="default: params.yaml task.prompt")
    parser.add_argument("--input", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    task = Task.from_params(params.task)
    row = dict(item.split("=", 1) for item in args.input)
    missing = [f.name for f in task.inputs if f.name not in row]
    if missing:
        raise SystemExit(f"prompts: give every input field: --input {missing[0]}=...")
    template = load_template(args.template or params.task.prompt, task.variables())
    prompt = render_prompt(template, task.prompt_variables(row))
    if prompt.is_chat:
        for turn in prompt.messages:
            print(f"[{turn['role']}]\n{turn['content']}")
    else:
        print(prompt.text, end="")


if __name__ == "__main__":
    main()
