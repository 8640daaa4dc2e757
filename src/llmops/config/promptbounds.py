"""The bounds one render of a prompt template lives within, and how sizes are estimated.

`llmops.config.promptsandbox` routes every loop, call, operator, `~`, slice and output of a
template through here. Per render (a `Budget`, held in a context variable while the render
runs):

- loop iterations, recursive loops included: MAX_ITERATIONS (Jinja's own range limit);
- calls of filters, tests, functions, methods, macros, and arithmetic: MAX_CALLS;
- any value a call or operator takes or makes, or `~` or `{{ }}` writes: MAX_VALUE
  characters as `str()` would write it. Where one step can amplify (`*`, `**`, `%`, `+`,
  format widths, join, replace, indent, wordwrap, tojson, expandtabs, translate) the size
  is estimated from the arguments *before* anything is allocated;
- integer arguments (widths, counts): MAX_VALUE; integers made by operators: MAX_INT_BITS;
- the characters all of these and every comparison handle, weighed by how slowly they
  handle them: MAX_WORK, so that a loop cannot repeat a large but allowed step until time
  runs out;
- the rendered text: MAX_OUTPUT characters (a prompt is at most a model's context).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Mapping, MappingView
from itertools import chain, islice, repeat
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

MAX_OUTPUT = 1_000_000  # characters: far above any model's context, far below memory trouble
MAX_VALUE = MAX_OUTPUT
MAX_ITERATIONS = 100_000
MAX_CALLS = 100_000
MAX_WORK = 20 * MAX_OUTPUT
MAX_INT_BITS = 10_000  # ~3,000 digits; Python refuses to print ints past 4,300
SEQUENCES = (str, bytes, list, tuple)
# MAX_WORK is in characters read or made at C speed (~1-10 ns each: operators, `~`, output,
# comparisons of text). A call is charged CALL_WEIGHT for each character it reads, and
# SLOW_WEIGHT for the filters that run Python code for each item (~0.3-2 µs a character,
# measured on 400,000 characters), so that a loop of them stays within about a second.
CALL_WEIGHT, SLOW_WEIGHT = 10, 100
SLOW = frozenset(
    {
        "batch",
        "dictsort",
        "groupby",
        "indent",
        "items",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "select",
        "selectattr",
        "slice",
        "sort",
        "striptags",
        "sum",
        "title",
        "unique",
        "urlencode",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)
# Width and precision digits of %-style and {}-style format fields.
PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?")
BRACE = re.compile(r"\{[^{}:]*:([^{}]*)")


class BoundError(SecurityError):
    """A render that went past one of the bounds (a jinja2.TemplateError)."""


class OutsideRenderError(Exception):
    """A bounded call outside a render: Jinja's constant folding then leaves it to render."""


class Budget:
    """What one render has spent so far."""

    __slots__ = ("calls", "iterations", "work")

    def __init__(self) -> None:
        self.iterations = self.calls = self.work = 0

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise BoundError(f"loops ran more than {MAX_ITERATIONS:,} iterations")

    def call(self, work: int) -> None:
        self.calls += 1
        self.work += work
        if self.calls > MAX_CALLS or self.work > MAX_WORK:
            self.over()

    def spend(self, work: int) -> None:
        self.work += work
        if self.work > MAX_WORK:
            self.over()

    def over(self) -> None:
        if self.calls > MAX_CALLS:
            raise BoundError(f"more than {MAX_CALLS:,} calls (filters, functions, operators)")
        raise BoundError(
            f"the template read or made more than {MAX_WORK:,} characters "
            f"(calls weigh {CALL_WEIGHT}x, slow filters {SLOW_WEIGHT}x)"
        )


CURRENT: contextvars.ContextVar[Budget] = contextvars.ContextVar("prompt_budget")


def budget() -> Budget:
    """The running render's budget."""
    try:
        return CURRENT.get()
    except LookupError:
        raise OutsideRenderError from None


def size(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters `str(value)` has; counting stops once past `limit`."""
    kind = type(value)
    if kind is str:
        return len(value)
    if (kind is list or kind is tuple) and all(map(isinstance, value, repeat(str))):
        return sum(map(len, value)) + 4 * len(value) + 2  # quotes and ", " between items
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 4
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 3
        elif isinstance(item, Mapping):
            total += 4
            stack.extend(islice(chain.from_iterable(item.items()), limit))
        elif isinstance(item, list | tuple | set | frozenset | MappingView):
            total += 2
            stack.extend(islice(item, limit))
        elif isinstance(item, range):  # what iterating it yields, not its short repr
            total += len(item) * (max(abs(item.start), abs(item.stop)).bit_length() // 3 + 3)
        elif not isinstance(item, jinja2.Undefined):
            total += 32  # floats, None, reprs of loops, macros, functions: short
    return total


def _depth(value: Any, limit: int = 64) -> int:
    level, depth = [value], 0
    while level and depth < limit:
        level = [
            x
            for v in level
            if isinstance(v, list | tuple | Mapping)
            for x in (v.values() if isinstance(v, Mapping) else v)
        ]
        depth += 1
    return depth


def _width(value: Any) -> int:
    """An indent or width argument as characters (Jinja accepts a number or a string)."""
    return max(value, 0) if type(value) is int else len(str(value or ""))


def format_size(fmt: Any, args: Any) -> int:
    """A bound on the length of `fmt % args` or `fmt.format(*args)`."""
    fmt = str(fmt)
    args = list(args.values() if isinstance(args, Mapping) else args)
    percent = PERCENT.findall(fmt)
    digits = re.findall(r"\d+", " ".join(chain(*percent, BRACE.findall(fmt))))
    widths = [int(d) if len(d) < 8 else MAX_VALUE + 1 for d in digits]
    widths += [abs(a) for a in args if type(a) is int]  # `%*d`, `{:{}}`
    fields = len(percent) + fmt.count("{")
    return len(fmt) + fields * (max(widths, default=0) + max(map(size, args), default=0) + 32)


def _replace_size(total: int, s: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(s, bytes):  # the filter takes any value; the method str or bytes
        s, old, new = str(s), str(old), str(new)
    n = s.count(old) if old else len(s) + 1
    n = min(n, count) if type(count) is int and count >= 0 else n
    return len(s) + n * max(len(new) - len(old), 0)


# What one call would make, from `total` (its arguments' sizes) and the arguments, where a
# call can make far more than it is given. Filters by name; methods of str and bytes by name.
FILTER_SIZES: dict[str, Callable[..., int]] = {
    "format": lambda total, fmt, *args, **kwargs: format_size(fmt, args or kwargs),
    "indent": lambda total, s, width=4, *_: total + (str(s).count("\n") + 1) * _width(width),
    "join": lambda total, items, sep="", *_: total + len(str(sep)) * len(items),
    "replace": _replace_size,
    "sum": lambda total, items, attribute=None, start=0: (  # list + list + ...: quadratic
        total * len(items) if isinstance(start, SEQUENCES) else 0
    ),
    "tojson": lambda total, value, indent=None: 6 * total * (1 + _width(indent) * _depth(value)),
    "wordwrap": lambda total, s, width=79, long=True, wrap=None, *_, **__: (
        total * (1 + len(str(wrap or "\n")))
    ),
}
METHOD_SIZES: dict[str, Callable[..., int]] = {
    "expandtabs": lambda total, s, tabsize=8: (
        len(s) + s.count(b"\t" if isinstance(s, bytes) else "\t") * _width(tabsize)
    ),
    "format": lambda total, fmt, *args, **kwargs: format_size(fmt, [*args, *kwargs.values()]),
    "format_map": lambda total, fmt, mapping: format_size(fmt, mapping),
    "join": lambda total, sep, items: total + len(sep) * len(items),
    "replace": _replace_size,
    "translate": lambda total, s, table: len(s) * (1 + total),
}


def check_call(
    name: str,
    args: tuple,
    kwargs: Mapping,
    estimate: Callable | None = None,
    owner: Any = None,
    weight: int = CALL_WEIGHT,
) -> Budget:
    """Refuse a call whose arguments (a method's object among them), or the value it would
    make, pass the bounds; charge what it reads, weighed by how fast it reads, to the budget."""
    args = args if owner is None else (owner, *args)
    total = 0
    for value in chain(args, kwargs.values()) if kwargs else args:
        total += (n := len(value) if type(value) is str else size(value))
        if n > MAX_VALUE:
            raise BoundError(f"{name}: an argument of more than {MAX_VALUE:,} characters")
        if type(value) is int and abs(value) > MAX_VALUE:
            raise BoundError(f"{name}: an argument of {value:,} is beyond {MAX_VALUE:,}")
    if estimate is not None and (n := estimate(total, *args, **kwargs)) > MAX_VALUE:
        raise BoundError(f"{name} would make {n:,} characters; the bound is {MAX_VALUE:,}")
    spent = CURRENT.get()  # inlined Budget.call: this runs for every call a template makes
    spent.calls += 1
    spent.work += total * weight
    if spent.calls > MAX_CALLS or spent.work > MAX_WORK:
        spent.over()
    return spent


def made(name: str, value: Any) -> Any:
    """`value`, once it is known to be within the bounds."""
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise BoundError(f"{name} made an integer of more than {MAX_INT_BITS:,} bits")
    if (n := len(value) if type(value) is str else size(value)) > MAX_VALUE:
        raise BoundError(f"{name} made a value of more than {MAX_VALUE:,} characters")
    CURRENT.get().spend(n)
    return value


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `left <operator> right` before computing it if it would pass the bounds."""
    n = 0
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, SEQUENCES) and isinstance(times, int):
                n = size(seq) * max(times, 0)
    elif operator == "+" and isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES):
        n = size(left) + size(right)
    elif operator == "%" and isinstance(left, str | bytes):
        n = format_size(left, right if isinstance(right, tuple | Mapping) else (right,))
    if n > MAX_VALUE:
        raise BoundError(f"'{operator}' would make {n:,} characters; the bound is {MAX_VALUE:,}")
    if type(left) is int and type(right) is int:
        bits = left.bit_length() + right.bit_length() if operator == "*" else 0
        if operator == "**" and right > 0 and abs(left) > 1:
            bits = left.bit_length() * right
        if bits > MAX_INT_BITS:
            raise BoundError(
                f"'{operator}' would make an integer of {bits:,} bits; "
                f"the bound is {MAX_INT_BITS:,}"
            )
    budget().call(0)
