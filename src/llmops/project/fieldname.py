"""A task field's name made from a column name of the user's data (by `make init`).

`field_name(column)` keeps ASCII letters, digits and _ and makes a name that is safe
wherever a field name goes: a YAML key read back as itself (not `yes` or `null`), not a
name params.yaml reserves, a template variable the prompt must be given (not a template
keyword, constant or global such as `self`, `none`, `range` or `not`), and not a Python
keyword (fields become model and API attribute names). A name that is none of these gets
`_field` appended; the column it came from is mapped in task.yaml `prep.columns`.
"""

from __future__ import annotations

import functools
import keyword
import re

from llmops.config.params import RESERVED
from llmops.project.declaration import plain_anywhere

MAX_FIELD = 64  # characters of a field name (a column name may be a paragraph)
# Names a template cannot take as a variable, beyond what `_jinja_reads_back` finds: the
# template language's statement words and the names it binds in loops, macros and blocks.
TEMPLATE_WORDS = frozenset(
    {
        "and",
        "as",
        "autoescape",
        "block",
        "break",
        "call",
        "caller",
        "continue",
        "do",
        "elif",
        "else",
        "endautoescape",
        "endblock",
        "endcall",
        "endfilter",
        "endfor",
        "endif",
        "endmacro",
        "endraw",
        "endset",
        "endtrans",
        "endwith",
        "extends",
        "filter",
        "for",
        "from",
        "if",
        "ignore",
        "import",
        "in",
        "include",
        "is",
        "kwargs",
        "loop",
        "macro",
        "missing",
        "not",
        "or",
        "pluralize",
        "raw",
        "recursive",
        "required",
        "scoped",
        "self",
        "set",
        "super",
        "trans",
        "varargs",
        "with",
        "without",
    }
)


def field_name(column: str) -> str:
    """A valid field name for a column: ASCII letters, digits and _ (at most MAX_FIELD),
    not a reserved name, read back as itself by YAML and by templates."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", column).strip("_")[:MAX_FIELD].strip("_") or "field"
    name = f"f_{name}" if name[0].isdigit() else name
    taken = name in RESERVED or name in TEMPLATE_WORDS or keyword.iskeyword(name)
    ok = not taken and plain_anywhere(name) and _jinja_reads_back(name)
    return name if ok else f"{name}_field"


@functools.lru_cache(maxsize=256)
def _jinja_reads_back(name: str) -> bool:
    """Whether `{{ name }}` is a variable a template must be given, rendered as given (not
    a constant such as none or true, a global such as range or namespace, or `self`)."""
    import jinja2
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    source = f"{{{{ {name} }}}}"
    try:
        used = meta.find_undeclared_variables(env.parse(source))
        return used == {name} and env.from_string(source).render({name: "v"}) == "v"
    except jinja2.TemplateError:
        return False
