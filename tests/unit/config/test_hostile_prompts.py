"""Prompt templates arrive in pull requests: a hostile one fails fast, in bounded memory,
with a PromptError that names the file (and the line, where one is to blame); an honest
one renders exactly as Jinja's plain sandbox rendered it before the bounds.

The hostile cases run in one subprocess capped at 1 GiB of address space (RLIMIT_AS), so
that a regression raises MemoryError there instead of taking the test machine down; each
case reports its message, its seconds and the process's peak memory after it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from llmops.config.params import load_params
from llmops.config.prompts import ROLE, PromptError, check_template, load_template, render_prompt
from llmops.config.task import Task
from tests.synthetic import INTENT_PROMPT, MANY_LABEL_PROMPT, PROMPT

REPO = Path(__file__).resolve().parents[3]
HEADER = "{#- variables: text -#}\n"
BIG = "{% set b = 'a' * 999999 %}"  # the largest value a template may make
N = r"[\d,]+"

# fmt: off
# name: (the template after HEADER, using `text`; how its PromptError's message ends, a regex)
HOSTILE = {
    "str times int": ("{{ 'a' * 500000000 }}{{ text }}", r"'\*' would make 500,000,000 characters; the bound is 1,000,000"),
    "list times int, nested loops": ("{% set l = [1] * 1000 %}{% for a in l %}{% for b in l %}{% for c in l %}x{% endfor %}{% endfor %}{% endfor %}{{ text }}", "loops ran more than 100,000 iterations"),
    "nested range loops": ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{{ text }}", "loops ran more than 100,000 iterations"),
    "loop over many slices": ("{% for x in range(10)|slice(999999) %}{% endfor %}{{ text }}", "loops ran more than 100,000 iterations"),
    "center width": ("{{ 'a'|center(1000000000) }}{{ text }}", "center: an argument of 1,000,000,000 is beyond 1,000,000"),
    "ljust width": ("{{ text.ljust(1000000000) }}", "ljust: an argument of 1,000,000,000 is beyond 1,000,000"),
    "batch size": ("{{ text|batch(1000000000)|list }}", "batch: an argument of 1,000,000,000 is beyond 1,000,000"),
    "% width": ("{{ '%0500000000d' % 1 }}{{ text }}", rf"'%' would make {N} characters; the bound is 1,000,000"),
    "% precision": ("{{ '%.999999f%.999999f' % (1.5, 2.5) }}{{ text }}", rf"'%' would make {N} characters"),
    "format filter widths": ("{{ '%0999999d%0999999d'|format(1, 2) }}{{ text }}", rf"format would make {N} characters"),
    "str.format width": ("{{ '{:>999999999}'.format(1) }}{{ text }}", rf"format would make {N} characters"),
    "str.format nested width": ("{{ ('{0:{1}}' * 1000).format(1, 999999) }}{{ text }}", rf"format would make {N} characters"),
    "str.format repeated field": ("{{ ('{0}' * 100000).format(text * 100) }}", rf"format would make {N} characters"),
    "power tower": ("{{ 9 ** (9 ** 9) }}{{ text }}", rf"'\*\*' would make an integer of {N} bits; the bound is 10,000"),
    "integer product": ("{{ (3 ** 4000) * (3 ** 4000) }}{{ text }}", rf"'\*' would make an integer of {N} bits; the bound is 10,000"),
    "lipsum is gone": ("{{ lipsum(100000) }}{{ text }}", r"header declares \['text'\] but the template uses \['lipsum', 'text'\]"),
    "namespace is gone": ("{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}{{ text }}", r"uses \['namespace', 'text'\]"),
    "doubling in a macro": ("{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ d(text, 60) }}", "'~' would make more than 1,000,000 characters"),
    "doubling in a recursive loop": ("{% for s in [text] recursive %}{{ loop([s ~ s]) }}{% endfor %}", "'~' would make more than 1,000,000 characters"),
    "long ~ chain": (BIG + "{{ b ~ b ~ b ~ b ~ text }}", "'~' would make more than 1,000,000 characters"),
    "str plus str": (BIG + "{{ b + b }}{{ text }}", r"'\+' would make 1,999,998 characters; the bound is 1,000,000"),
    "replace '' with big": ("{{ text|replace('', 'x' * 100000) }}", rf"replace would make {N} characters"),
    "replace method": ("{{ text.replace('a', 'x' * 100000) }}", rf"replace would make {N} characters"),
    "join, long separator": ("{{ range(100000)|join('y' * 100) }}{{ text }}", rf"join would make {N} characters"),
    "str.join of a generator": ("{{ ('y' * 1000).join(range(100000)|map('string')) }}{{ text }}", r"the template read or made more than 20,000,000 characters"),
    "str.join of a list": ("{{ ('y' * 1000).join(range(100000)|list) }}{{ text }}", rf"join would make {N} characters"),
    "indent many lines": ("{{ ('\\n' * 100000)|indent(1000) }}{{ text }}", rf"indent would make {N} characters"),
    "wordwrap wrapstring": ("{{ ('a ' * 400000)|wordwrap(1, wrapstring='x' * 1000) }}{{ text }}", rf"wordwrap would make {N} characters"),
    "tojson indent": ("{{ [[[[[[text]]]]]]|tojson(indent=100000) }}", rf"tojson would make {N} characters"),
    "expandtabs": ("{{ ('\\t' * 1000).expandtabs(100000) }}{{ text }}", rf"expandtabs would make {N} characters"),
    "translate": ("{{ ('a' * 100000).translate({97: 'b' * 1000}) }}{{ text }}", rf"translate would make {N} characters"),
    "sum of lists": ("{{ ([[1] * 100] * 1000)|sum(start=[]) }}{{ text }}", rf"sum would make {N} characters"),
    "dict.fromkeys": (BIG + "{{ dict.fromkeys(range(100000), b)|length }}{{ text }}", "fromkeys made a value of more than 1,000,000 characters"),
    "references, written": (BIG + "{{ [b, b, b] }}{{ text }}", r"\{\{ \}\} would write more than 1,000,000 characters"),
    "references, stringified": (BIG + "{{ [b, b, b]|upper }}{{ text }}", "upper: an argument of more than 1,000,000 characters"),
    "output": ("{% for i in range(100) %}{{ 'x' * 20000 }}{% endfor %}{{ text }}", "the template's output passed 1,000,000 characters"),
    "macro text in a loop": ("{% macro m() %}{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}{% endmacro %}{{ m() }}{{ text }}", "a macro or block would make more than 1,000,000 characters"),
    "set block in a loop": ("{% set x %}{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}{% endset %}{{ text }}", "a macro or block would make more than 1,000,000 characters"),
    "endless recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}{{ text }}", "macros or recursive loops nest too deeply"),
    "exponential macro calls": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}{{ text }}", r"more than 100,000 calls \(filters, functions, operators\)"),
    "== on a big value, looped": (BIG + "{% for i in range(100000) %}{% if b == text %}{% endif %}{% endfor %}", r"the template read or made more than 20,000,000 characters \(calls weigh 10x, slow filters 100x\)"),
    "a filter on a big value, looped": (BIG + "{% for i in range(100000) %}{{ b|wordcount }}{% endfor %}{{ text }}", r"the template read or made more than 20,000,000 characters \(calls weigh 10x, slow filters 100x\)"),
    "slicing a big value, looped": (BIG + "{% for i in range(100000) %}{% set c = b[::-1] %}{% endfor %}{{ text }}", r"the template read or made more than 20,000,000 characters \(calls weigh 10x, slow filters 100x\)"),
    "in-test on a big value, looped": (BIG + "{% for i in range(100000) %}{% if text is in b %}{% endif %}{% endfor %}", r"the template read or made more than 20,000,000 characters \(calls weigh 10x, slow filters 100x\)"),
    "mutation": ("{% set l = [] %}{{ l.append(1) }}{{ text }}", r"access to attribute 'append' of 'list' object is unsafe\."),
    "division by zero": ("{{ 1 / 0 }}{{ text }}", "ZeroDivisionError: division by zero"),
    "range past Jinja's limit": ("{{ range(500000)|length }}{{ text }}", r"OverflowError: Range too big\. The sandbox blocks ranges larger than MAX_RANGE \(100000\)\."),
}
# What is refused at load: (the template after HEADER, how the message ends).
AT_LOAD = {
    "include": ("{{ text }}\n{% include 'other.jinja' %}", r"t\.jinja:3: \{% include %\} is not allowed: a prompt is one file"),
    "import": ("{{ text }}\n\n{% import 'macros.jinja' as m %}", r"t\.jinja:4: \{% import %\} is not allowed: a prompt is one file"),
    "from import": ("{% from 'macros.jinja' import m %}{{ text }}", r"t\.jinja:2: \{% from %\} is not allowed: a prompt is one file"),
    "extends": ("{% extends 'base.jinja' %}{{ text }}", r"t\.jinja:2: \{% extends %\} is not allowed: a prompt is one file"),
    "include in an if": ("{% if false %}\n{% include 'x.jinja' %}{% endif %}{{ text }}", r"t\.jinja:3: \{% include %\} is not allowed: a prompt is one file"),
    "5,000-digit number": ("{{ 1" + "0" * 5000 + " }}{{ text }}", r"t\.jinja: cannot parse: ValueError"),
    "too deep to compile": ("{% for i in [1] %}" * 25 + "{{ text }}" + "{% endfor %}" * 25, r"t\.jinja: cannot compile: SyntaxError: too many statically nested blocks"),
    "source too long": ("{{ text }}" + "x" * 1_000_000, r"t\.jinja: the template has 1,000,034 characters; the bound is 1,000,000"),
    "urlize is gone": ("{{ text|urlize }}", r"t\.jinja:2: template syntax error: No filter named 'urlize'\."),
}
# Templates that use what prompts use, on a text and a list of labels.
HONEST = {
    "filters": "{{ text|trim|upper }} {{ text|length }} {{ text|truncate(20) }} {{ text|replace('a', 'b') }} {{ labels|join(', ') }} {{ labels|first }} {{ labels|sort|last }} {{ labels|map('upper')|join }} {{ text|default('x') }} {{ text|wordcount }} {{ text|center(60) }}|{{ text|indent(2, true) }}|{{ text|wordwrap(10) }}|{{ labels|tojson }}|{{ '%s: %d'|format(text, 3) }}",
    "loops": "{% for label in labels %}{{ loop.index }}. {{ label }}{% if not loop.last %}\n{% endif %}{% endfor %}\n{% for a in labels if a != 'b' %}{{ a ~ '!' }}{% else %}none{% endfor %}{% for a, b in [(1, 2)] %}{{ a + b }}{% endfor %}{{ text }}",
    "logic and arithmetic": "{% if text and labels|length > 2 %}{{ labels|length * 2 + 1 }} {{ 7 // 2 }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ '%-5s|' % 'x' }} {{ '{}-{}'.format(1, 2) }}{% endif %} {{ text[:10] }} {{ 'b' in labels }} {{ text is string }} {{ labels + ['d'] }}",
    "macros and blocks": "{% macro item(x) %}<{{ x }}>{% endmacro %}{% for l in labels %}{{ item(l) }}{% endfor %}{% set joined %}{{ labels|join('/') }}{% endset %}{{ joined }}{% filter upper %}{{ text }}{% endfilter %}",
    "recursive loop": "{% for l in [[labels, labels]] recursive %}{% if l is string %}{{ l }}{% else %}[{{ loop(l) }}]{% endif %}{% endfor %}{{ text }}",
    "chat": "system:\nSort into {{ labels|join(', ') }}.\nuser:\n{{ text }}",
}
# fmt: on


def run_cases(cases: dict[str, str], folder: str) -> dict[str, dict]:
    """Load and render each template: its message (or "rendered"), seconds, and the peak
    memory (MiB) of the process so far, which grows with the first case to need more."""
    import time

    out = {}
    for name, body in cases.items():
        path = Path(folder) / "t.jinja"
        path.write_text(HEADER + body)
        start = time.perf_counter()
        try:
            render_prompt(load_template(path, ("text",)), {"text": "a" * 100})
            message = "rendered"
        except PromptError as err:
            message = str(err)
        seconds = time.perf_counter() - start
        out[name] = {"message": message, "seconds": seconds, "mib": peak_mib()}
    return out


def peak_mib() -> float:
    """The process's peak resident memory (Linux; 0 elsewhere). Not ru_maxrss: a child
    started from a large process inherits that one's peak."""
    status = Path("/proc/self/status")
    peak = re.search(r"VmHWM:\s+(\d+) kB", status.read_text()) if status.exists() else None
    return int(peak.group(1)) / 2**10 if peak else 0.0


CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))  # a regression: MemoryError, no crash
from tests.unit.config.test_hostile_prompts import run_cases
print(json.dumps(run_cases(json.loads(sys.stdin.read()), sys.argv[1])))
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The folder the cases ran in, and each case's outcome."""
    cases = {name: body for name, (body, _) in HOSTILE.items()}
    folder = tmp_path_factory.mktemp("hostile")
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], input=json.dumps(cases),
                          capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return folder, json.loads(done.stdout)


def says(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_template_is_a_prompt_error_and_small(hostile, name):
    folder, outcomes = hostile
    outcome, expected = outcomes[name], HOSTILE[name][1]
    assert outcome["message"].startswith(f"{folder / 't.jinja'}: ")
    assert "\n" not in outcome["message"]
    assert says(expected, outcome["message"]), outcome["message"]
    # No timing assertion: a case that ran unbounded would not end, and the fixture's
    # subprocess timeout (120 s for all of them; they take milliseconds) would fail it.
    assert outcome["mib"] < 256, outcome


@pytest.mark.parametrize("name", list(AT_LOAD))
def test_what_a_prompt_cannot_use_is_refused_at_load_with_its_line(tmp_path, name):
    body, expected = AT_LOAD[name]
    path = tmp_path / "t.jinja"
    path.write_text(HEADER + body)
    with pytest.raises(PromptError) as err:
        load_template(path, ("text",))
    assert str(err.value).startswith(f"{path}")
    assert says(expected, str(err.value)), str(err.value)


def plain(source: str, variables: dict) -> str:
    """What a template rendered to before the bounds: Jinja's sandbox, same settings."""
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source).render(**variables)


@pytest.mark.parametrize("name", list(HONEST))
def test_an_honest_template_renders_as_the_plain_sandbox_renders_it(tmp_path, name):
    chat = "\n  format: chat" if name == "chat" else ""
    source = f"{{#- variables: text, labels{chat} -#}}\n{HONEST[name]}"
    path = tmp_path / "t.jinja"
    path.write_text(source)
    variables = {"text": "  Delivery was late, and the box was open.\n", "labels": ["a", "b", "c"]}
    prompt = render_prompt(load_template(path), variables)
    before = plain(source, variables)
    if prompt.is_chat:  # the turns of the text rendered before
        parts = ROLE.split(before)
        before = [
            {"role": r, "content": c.strip()} for r, c in zip(parts[1::2], parts[2::2], strict=True)
        ]
    assert (list(prompt.messages) if prompt.is_chat else prompt.text) == before


@pytest.mark.parametrize("source", [PROMPT, INTENT_PROMPT, MANY_LABEL_PROMPT],
                         ids=["review", "intent", "many labels"])  # fmt: skip
def test_the_test_tasks_templates_render_as_before(tmp_path, source):
    path = tmp_path / "t.jinja"
    path.write_text(source)
    template = load_template(path)
    variables = {v: ["x", "y"] if v.endswith("_values") else "Where is my parcel?"
                 for v in template.variables}  # fmt: skip
    assert render_prompt(template, variables).text == plain(source, variables)


@pytest.mark.parametrize("path", sorted((REPO / "prompts").glob("*.jinja")), ids=lambda p: p.name)
def test_the_repositorys_templates_render_as_before_and_pass_the_check(path):
    task = Task.from_params(load_params(REPO / "params.yaml").task)
    row = {f.name: f.values[0] if f.values else "I was charged twice, please help."
           for f in task.inputs}  # fmt: skip
    variables = task.prompt_variables(row)
    source = path.read_text(encoding="utf-8")
    assert render_prompt(load_template(path, task.variables()), variables).text == plain(
        source, variables
    )
    assert check_template(path, task).text  # every input at its max_chars, within the bounds


def test_a_folder_a_device_or_bytes_that_are_not_utf8_are_a_prompt_error(tmp_path):
    (tmp_path / "bytes.jinja").write_bytes(HEADER.encode() + b"\xff\xfe{{ text }}")
    with pytest.raises(PromptError, match=f"{tmp_path / 'bytes.jinja'}: cannot be read as"):
        load_template(tmp_path / "bytes.jinja")
    (tmp_path / "zero.jinja").symlink_to("/dev/zero")  # would be read forever
    (tmp_path / "big.jinja").write_text(HEADER + "x" * 5_000_000)
    for path in (tmp_path, tmp_path / "zero.jinja", tmp_path / "big.jinja"):
        with pytest.raises(PromptError, match=f"{path}: not a template file of at most"):
            load_template(path)


def test_the_cli_says_one_line_for_a_broken_template_or_params(tmp_path):
    broken = tmp_path / "broken.jinja"
    broken.write_text(HEADER + "{{ text }}\n{% include 'x.jinja' %}\n")
    inputs = Task.from_params(load_params(REPO / "params.yaml").task).inputs
    row = [f"--input={f.name}=hi" for f in inputs]
    refused = f"{broken}:3: {{% include %}} is not allowed: a prompt is one file"
    for argv, says in (
        (["--template", str(broken), "--check"], refused),
        (["--template", str(broken), *row], refused),
        (["--params", str(tmp_path / "absent.yaml"), "--check"], "absent.yaml"),
    ):
        done = subprocess.run([sys.executable, "-m", "llmops.config.prompts", *argv],
                              capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
        assert done.returncode == 1, done
        assert len(done.stderr.strip().splitlines()) == 1, textwrap.shorten(done.stderr, 800)
        assert says in done.stderr
