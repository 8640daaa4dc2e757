"""Prompt templates: the one place where prompt text is assembled and turned into tokens.

Templates are Jinja files under `prompts/` whose first comment names the variables they use
and, optionally, their format:

    {#- variables: text, label_values
        format: chat
        ... (free text: what each variable holds) -#}

A template may use any variable the task provides (`llmops.config.task.Task.variables`: the input
fields and, for each label field F, `F_values`); the header must list exactly the ones it
uses. Rendering is strict: an undefined variable is an error, never an empty prompt. It
runs in `llmops.config.promptsandbox`, which bounds what a template may reach and spend (templates
arrive in pull requests).

Two formats:
- `completion` (default): the rendered text is the prompt; the answer follows it. Right
  for base models such as `tiny`.
- `chat`: the rendered text is a conversation. A line holding only `system:`, `user:` or
  `assistant:` starts a turn; the tokenizer's own chat template turns the turns into
  tokens, with the generation prompt for the assistant's answer. Right for instruct
  models from the hub.

Training, evaluation and serving all call `render_prompt` and `prompt_ids`, so a model is
evaluated and served with exactly the tokens it was trained on. Render one by hand:

    python -m llmops.config.prompts --input text="Where is my parcel?"   (one --input per field)
    python -m llmops.config.prompts --check    (load it and render it once with the longest inputs)
"""

from __future__ import annotations

import argparse
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import meta

from llmops.config import promptsandbox
from llmops.config.promptbounds import MAX_OUTPUT

if TYPE_CHECKING:
    from llmops.config.task import Task

HEADER = re.compile(r"\A\{#-?\s*variables:\s*([A-Za-z_][\w ,]*)(?P<rest>.*?)-?#\}", re.S)
FORMAT = re.compile(r"^\s*format:\s*(\S+)\s*$", re.M)
FORMATS = ("completion", "chat")
ROLE = re.compile(r"^(system|user|assistant):[ \t]*$", re.M)
SAMPLE = "sample text "  # what check_template fills each input field with, to its max_chars


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


def load_template(path: Path | str, available: tuple[str, ...] | None = None) -> PromptTemplate:
    """Read a template and check its header: it names exactly the variables the template
    uses, and (when `available` is given) only variables the task provides."""
    path = Path(path)
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode) or found.st_size > 4 * MAX_OUTPUT:
            # A link to a device or a huge file would be read whole (or forever).
            raise PromptError(f"{path}: not a template file of at most {4 * MAX_OUTPUT:,} bytes")
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt template not found") from None
    except (OSError, UnicodeDecodeError) as err:  # a folder, bytes that are not UTF-8, ...
        raise PromptError(f"{path}: cannot be read as a prompt template ({err})") from None
    header = HEADER.match(source)
    if not header:
        raise PromptError(f"{path}: first line must be a header '{{#- variables: a, b -#}}'")
    declared = tuple(v.strip() for v in header.group(1).split(",") if v.strip())
    fmt = FORMAT.search(header.group("rest"))
    form = fmt.group(1) if fmt else "completion"
    if form not in FORMATS:
        raise PromptError(f"{path}: header format {form!r}; expected one of {list(FORMATS)}")
    try:
        tree = promptsandbox.parse(source)
        used = meta.find_undeclared_variables(tree)
        compiled = promptsandbox.compile_template(tree)
    except promptsandbox.NotAllowed as err:
        raise PromptError(
            f"{path}{f':{err.lineno}' if err.lineno else ''}: {err.message}"
        ) from None
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
            f"available: {list(available or ())} (task.yaml task)"
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
    used = {v: variables[v] for v in template.variables}
    try:
        text = template.compiled.render(**used)
        if template.format == "completion":
            return Prompt(text=text)
        return Prompt(messages=_turns(template, text, used))
    except jinja2.TemplateError as err:  # an absent attribute, a sandbox bound, ...
        message = " ".join(str(err.message).split())  # one line, even if it quotes a value
        raise PromptError(f"{template.path}: {message[:500]}") from None


def check_template(path: Path | str, task: Task) -> Prompt:
    """Load the task's template and render it once, every input at its longest (max_chars;
    a label input: its longest value): what `make params` checks before any stage runs."""
    row = {
        f.name: max(f.values, key=len) if f.values else (SAMPLE * f.max_chars)[: f.max_chars]
        for f in task.inputs
    }
    return render_prompt(load_template(path, task.variables()), task.prompt_variables(row))


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
    from llmops.config.params import ParamsError, load_params
    from llmops.config.task import Task

    parser = argparse.ArgumentParser(description="Render the task's prompt template for one row.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--template", type=Path, help="default: task.yaml task.prompt")
    parser.add_argument("--input", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument(
        "--check", action="store_true", help="render it once, every input at its max_chars"
    )
    args = parser.parse_args(argv)
    if bad := [item for item in args.input if "=" not in item]:
        raise SystemExit(f"prompts: --input takes FIELD=VALUE, not {bad[0]!r}")
    try:  # a broken template or params.yaml is one line, never a traceback
        params = load_params(args.params)
        task = Task.from_params(params.task)
        path = args.template or params.task.prompt
        if args.check:
            prompt = check_template(path, task)
            size = len(prompt.text) + sum(len(m["content"]) for m in prompt.messages)
            print(f"{path}: ok (renders {size:,} characters with every input at its longest)")
            return
        row = dict(item.split("=", 1) for item in args.input)
        missing = [f.name for f in task.inputs if f.name not in row]
        if missing:
            raise SystemExit(f"prompts: give every input field: --input {missing[0]}=...")
        prompt = render_prompt(load_template(path, task.variables()), task.prompt_variables(row))
    except (ParamsError, PromptError) as err:
        raise SystemExit(str(err)) from None
    if prompt.is_chat:
        for turn in prompt.messages:
            print(f"[{turn['role']}]\n{turn['content']}")
    else:
        print(prompt.text, end="")


if __name__ == "__main__":
    main()
