"""The sandbox prompt templates load and render in: Jinja's immutable sandbox, bounded.

Templates arrive in pull requests and are rendered for every example and request, so one
must not read outside its values (Jinja's sandbox), reach another file, or exhaust memory
or time (the bounds of `llmops.config.promptbounds`).

- Loading refuses `{% include %}`, `{% import %}`, `{% from %}` and `{% extends %}` (a prompt
  is one file; the environment has no loader) and sources longer than MAX_OUTPUT.
- Compiling rewrites the syntax tree so that every `{% for %}` iterable (and a recursive
  loop's `loop(...)`) counts iterations, every `~` checks what it joins, every slice what it
  made and every comparison charges what it scans; calls, filters, tests, arithmetic,
  `{{ }}` and the text macros and `{% set %}` blocks collect go through the environment's
  hooks.
- Rendering runs on a fresh budget and stops once the text passes MAX_OUTPUT.
- Gone: the globals that only amplify (lipsum, cycler, joiner, namespace), the HTML
  filters urlize and pprint, and `random` (a prompt must render the same in training,
  evaluation and serving); prompts need loops, `if`, join and the string filters.

A violation is a jinja2.TemplateError (NotAllowed at load, BoundError at render), and so is
any other exception a template raises; llmops.config.prompts names the template in its message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from llmops.config.promptbounds import (
    CALL_WEIGHT,
    CURRENT,
    FILTER_SIZES,
    MAX_OUTPUT,
    MAX_VALUE,
    METHOD_SIZES,
    SLOW,
    SLOW_WEIGHT,
    BoundError,
    Budget,
    budget,
    check_binop,
    check_call,
    made,
    size,
)

NOT_ALLOWED = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from %}",
    nodes.Extends: "{% extends %}",
}
# Filters the compiled tree calls; a template cannot name them (they hold a space).
LOOP, CONCAT, COST, SLICE = "llmops loop", "llmops concat", "llmops cost", "llmops slice"


class NotAllowed(jinja2.TemplateSyntaxError):
    """A template refused at load time; `lineno` is 0 when no line is to blame."""


def _bounded(name: str, func: Callable) -> Callable:
    """`func` (a filter or test) checked before and after each call."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) else 0  # context, eval_ctx or env
    estimate = FILTER_SIZES.get(name)
    gather = name in SLOW or name == "join"  # they iterate: a generator is listed, measured
    weight = SLOW_WEIGHT if name in SLOW else CALL_WEIGHT

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if gather and type(args[skip]) is not list and isinstance(args[skip], Iterator):
            args = (*args[:skip], list(args[skip]), *args[skip + 1 :])
        spent = check_call(name, args[skip:] if skip else args, kwargs, estimate, None, weight)
        value = func(*args, **kwargs)
        if type(value) is str and len(value) <= MAX_VALUE:  # made(), inlined for the usual
            spent.work += len(value)  # checked at the next charge
            return value
        return made(name, value)

    return functools.update_wrapper(bounded, func)


def _loop(iterable: Iterable) -> Iterator:
    spent = budget()  # now, not at the first item: outside a render this must fail at once

    def counted() -> Iterator:
        for item in iterable:
            spent.iterate()
            yield item

    return counted()


@jinja2.pass_eval_context
def _concat(eval_ctx: Any, parts: list) -> str:
    total = sum(size(p) for p in parts)
    if total > MAX_VALUE:
        raise BoundError(f"'~' would make more than {MAX_VALUE:,} characters")
    budget().call(total)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _cost(value: Any) -> Any:
    """`value`, its length charged to the render: a comparison scans what it compares (an
    item of a list or dict at Python's speed, a character of text at memcmp's)."""
    if isinstance(value, str | bytes):
        budget().spend(len(value))
    else:
        budget().spend(CALL_WEIGHT * len(value) if isinstance(value, list | tuple | dict) else 1)
    return value


def _finalize(value: Any) -> Any:
    if (n := len(value) if type(value) is str else size(value)) > MAX_VALUE:
        raise BoundError(f"{{{{ }}}} would write more than {MAX_VALUE:,} characters")
    CURRENT.get().spend(n)  # LookupError at compile time: Jinja then leaves it to render
    return value


def _join(parts: Iterable[str]) -> str:
    """The text a macro, `{% set %}` block or filter block collected, within the bounds."""
    parts = list(parts)
    if (total := sum(map(len, parts))) > MAX_VALUE:
        raise BoundError(f"a macro or block would make more than {MAX_VALUE:,} characters")
    budget().spend(total)
    return "".join(parts)


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Bounds(NodeTransformer):
    """Route loops, `~`, slices and comparisons of a parsed template through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 (Jinja's name)
        self.generic_visit(node)
        node.iter = _filter(node.iter, LOOP)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), CONCAT)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)  # Jinja compiles a slice as Python's, past the sandbox
        return _filter(node, SLICE) if isinstance(node.arg, nodes.Slice) else node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        for holder in (node, *node.ops):
            holder.expr = _filter(holder.expr, COST)
        return node


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every call, operator and output bounded."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    concat = staticmethod(_join)

    def __init__(self) -> None:
        # StrictUndefined: a missing variable raises instead of rendering as "".
        super().__init__(
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=_finalize,
        )
        for name in ("lipsum", "cycler", "joiner", "namespace"):
            del self.globals[name]
        # random: a prompt must be the same in training, evaluation and serving.
        for name in ("urlize", "pprint", "random"):
            del self.filters[name]
        self.filters = {name: _bounded(name, f) for name, f in self.filters.items()}
        self.filters |= {
            LOOP: _loop,
            CONCAT: _concat,
            COST: _cost,
            SLICE: functools.partial(made, "a slice"),
        }
        self.tests = {name: _bounded(name, f) for name, f in self.tests.items()}
        self.template_class = BoundedTemplate

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return made(f"'{operator}'", self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # Double underscores as in Jinja: a template may pass keywords named self or obj.
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's loop(items)
            args = (_loop(args[0]), *args[1:])
        name = __obj.name if isinstance(__obj, Macro) else getattr(__obj, "__name__", "a call")
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        estimate = METHOD_SIZES.get(name) if isinstance(owner, str | bytes) else None
        if estimate and args and isinstance(args[0], Iterator):
            args = (list(args[0]), *args[1:])  # ", ".join(generator): measured, then joined
        plain = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        check_call(name, args, plain, estimate, owner)
        return made(name, super().call(__context, __obj, *args, **kwargs))


class BoundedTemplate(jinja2.Template):
    """A template whose render runs on a fresh budget and stops at MAX_OUTPUT."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        """The rendered text; any failure (a bound included) is a jinja2.TemplateError."""
        token = CURRENT.set(Budget())
        try:
            parts, total = [], 0
            for part in self.root_render_func(self.new_context(dict(*args, **kwargs))):
                total += len(part)
                if total > MAX_OUTPUT:
                    raise BoundError(f"the template's output passed {MAX_OUTPUT:,} characters")
                parts.append(part)
            return "".join(parts)
        except jinja2.TemplateError:
            raise
        except RecursionError:
            raise BoundError("macros or recursive loops nest too deeply") from None
        except Exception as err:  # 1/0, int("x"), ...: the template's error, on one line
            text = " ".join(str(err).split())[:200]
            raise jinja2.TemplateRuntimeError(f"{type(err).__name__}: {text}") from None
        finally:
            CURRENT.reset(token)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        yield self.render(*args, **kwargs)  # a stream would run outside the budget


@functools.cache
def environment() -> BoundedEnvironment:
    """The one environment (made on first use, not on import)."""
    return BoundedEnvironment()


def parse(source: str) -> nodes.Template:
    """The template's syntax tree; refuses what a one-file prompt cannot use."""
    if len(source) > MAX_OUTPUT:
        raise NotAllowed(
            f"the template has {len(source):,} characters; the bound is {MAX_OUTPUT:,}", 0
        )
    try:
        tree = environment().parse(source)
    except (RecursionError, ValueError) as err:  # deep nesting, a 5,000-digit number
        raise NotAllowed(f"cannot parse: {type(err).__name__}", 0) from None
    for node in tree.find_all(tuple(NOT_ALLOWED)):
        raise NotAllowed(
            f"{NOT_ALLOWED[type(node)]} is not allowed: a prompt is one file", node.lineno
        )
    return tree


def compile_template(tree: nodes.Template) -> jinja2.Template:
    """The bounded template of a tree from `parse` (which it changes)."""
    _Bounds().visit(tree)
    tree.set_environment(environment())
    try:
        return environment().from_string(tree)
    except (RecursionError, SyntaxError, ValueError) as err:  # e.g. 20 nested loops
        raise NotAllowed(f"cannot compile: {type(err).__name__}: {err}", 0) from None
