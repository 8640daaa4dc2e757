"""Untrusted text in Markdown (llmops.report.escape), checked on GitHub's own renderer (cmark-gfm
through cmarkgfm, with its table, autolink, strikethrough and tagfilter extensions): a
corpus of hostile strings, alone and in a table cell, renders as its own text with no tag,
link, image or live @mention; so do the data report and the pull-request report built from
it, before and after llmops.report.comment.defuse; and so does any text hypothesis makes up.

GitHub's mention, #reference and emoji filters run after cmark-gfm and are not in cmarkgfm:
`live` checks the rendered text against their rules instead.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import cmarkgfm
import pytest
import yaml
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.data.records import Rejection
from llmops.evaluate import baseline
from llmops.evaluate.metrics import metric_names
from llmops.evaluate.predictions import Prediction, example_rows, write_examples, write_predictions
from llmops.report import data_report, pullrequest
from llmops.report.comment import defuse
from llmops.report.escape import JOINER, code_block, escape
from tests.synthetic import write_params
from tests.unit.report.test_report import inputs, record

CORPUS = [
    # links: bare URLs, www., e-mail addresses, schemes (GFM extended autolinks)
    "http://evil.example/x", "https://evil.example/x?a=1&b=2", "hTTps://e.x", "ftp://e.x",
    "see http://evil.example.", "www.evil.example", "WWW.EVIL.EXAMPLE/x", "(www.evil.example)",
    "_www.evil.example_", "jane@example.com", "mailto:jane@example.com",
    "xmpp:jane@example.com/home", '"jane doe"@example.com', "foo.bar+baz@sub.example.co.uk",
    # links: inline, reference, angle autolinks; images
    "[x](javascript:alert(1))", "[x][1]\n\n[1]: http://e.x", "[x]\n\n[x]: http://e.x",
    "<http://e.x>", "<jane@example.com>", "![x](http://evil.example/p.png)",
    "![x](http://evil.example/p.png) <img src=x onerror=alert(1)> @octocat",
    # mentions, references, emoji, and entities that decode to them
    "@octocat", "@org/team", "hi @octocat, @Octo-Cat!", "@@octocat", "a@octocat",
    "&#64;octocat", "&commat;octocat", "&#x40;octocat", "&#64octocat", "＠octocat",
    "﹫octocat", "@\u200doctocat", "#123", "fixes #1 and owner/repo#2", "GH-123", "gh-7",
    "＃123", "&#35;123", "owner/repo@a5c3785ed8d6a35868bc169f07e40e889087fd2e",
    ":octocat: :+1:",
    # HTML
    "<script>alert(1)</script>", "<a href=x>click</a>", "<img src=x onerror=alert(1)>",
    "<iframe src=//e.x></iframe>", "<!-- hidden -->", "<details><summary>s</summary>x</details>",
    "&lt;script&gt;", "&amp;amp; &quot; &#0; &#xD800; &unknown; & ; &",
    # code, tables, line breaks, backslashes
    "`code` ``double``", "```\nfenced\n```", "~~~\nfenced\n~~~", "| table | break |",
    "a | b\n|---|---|\n| c | d |", "line one\nline two\r\nline three\rfour",
    "trailing backslash \\", "\\", "\\|", "\\`", "a\\\nb", "two trailing spaces  \nnext",
    # block starts and emphasis
    "# heading", "> quote", "- item", "+ item", "* item", "1. item", "1) item", "---", "===",
    "    indented code", "*em* _em_ **strong** __strong__ ~~del~~ ~del~",
    "snake_case_name and __dunder__", "$x^2$ and $$y$$", "[^1]\n\n[^1]: note", "- [ ] task",
    "> [!WARNING]\n> alert",
    # invisible and odd characters, lengths
    "\u202eevil\u202c reversed \u2066isolate\u2069", "\u2069\u202e unbalanced", "\x00 nul",
    "\t tab\tinside", "", "   ", "emoji 😀 and 中文 and العربية", "x" * 1000, "@" * 500,
    "http://e.x/" + "a" * 600,
]  # fmt: skip

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
TABLE_TAGS = {"table", "thead", "tbody", "tr", "th", "td"}


def render(markdown: str) -> str:
    """GitHub's renderer, raw HTML let through (GitHub's sanitiser keeps most tags)."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def tags(html_text: str) -> set[str]:
    return {t.lower() for t in re.findall(r"</?([A-Za-z][\w-]*)", html_text)}


def text_of(html_text: str) -> str:
    """What a reader sees: tags gone, entities decoded (joiners kept)."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text))


def live(text: str) -> list[str]:
    """What GitHub would still turn into a mention, reference, emoji or link in `text`:
    its mention rule (@ then a letter or digit, after a non-word character; full-width
    forms too, to be safe), #123 and GH-123 references, :emoji: codes, and the autolinks'
    openings. `@` right before a letter is refused even after a word (e-mail addresses)."""
    found = re.findall(r"[@＠﹫][A-Za-z0-9]", text)
    found += re.findall(r"(?<!\w)[#＃]\d|(?i:(?<![a-z0-9])gh-\d)|:[a-z0-9_+-]+:", text)
    return found + re.findall(r"(?i)://|(?<![a-z0-9])www\.|(?:mailto|xmpp):\w", text)


def seen(text: str) -> str:
    """Text as a reader compares it: joiners gone, blanks collapsed."""
    return " ".join(text.replace(JOINER, "").split())


def expected(text: str, limit: int = 400) -> str:
    """How escape(text) should read: cut with "…", line breaks as spaces, bidi controls
    dropped (NUL is shown as U+FFFD by any CommonMark renderer)."""
    cut = seen(BIDI.sub("", text[:limit]).replace("\x00", "\ufffd"))
    return cut + "…" if len(text) > limit else cut


def cells(html_text: str) -> list[list[str]]:
    """The body rows of every table, each cell as the reader sees it."""
    return [
        [seen(text_of(c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", html_text, re.S)
        if "<td" in row
    ]


def assert_inert(html_text: str, allowed: set[str]) -> None:
    assert tags(html_text) <= allowed, tags(html_text) - allowed
    assert not live(text_of(html_text)), live(text_of(html_text))


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_text_renders_as_itself_and_nothing_else(text):
    out = render(escape(text))
    assert_inert(out, {"p"})
    assert seen(text_of(out)) == expected(text)


@pytest.mark.parametrize("text", CORPUS)
def test_hostile_text_stays_in_its_table_cell(text):
    out = render(f"| a | b |\n|---|---|\n| {escape(text)} | after |\n| next | row |")
    assert_inert(out, TABLE_TAGS)
    assert cells(out) == [[expected(text), "after"], ["next", "row"]]


@pytest.mark.parametrize("text", CORPUS)
def test_defuse_after_escape_changes_nothing_a_reader_sees(text):
    # llmops.report.comment defuses the whole report again before posting: nothing escaped twice.
    out = render(f"| a |\n|---|\n| {defuse(escape(text))} |")
    assert_inert(out, TABLE_TAGS)
    assert cells(out) == [[expected(text)]]


@pytest.mark.parametrize("text", CORPUS)
def test_defused_text_is_inert_even_inside_raw_html(text):
    # In an HTML block backslashes are plain text and entities decode (text_of decodes, as
    # a browser does): defuse turns the escapes that matter there into entities.
    out = render(defuse(f"<details>\n{escape(text)}\n</details>"))
    assert_inert(out, {"details"})


def test_escape_is_readable_where_nothing_needs_escaping():
    assert escape("unknown_label in data/raw/a-b.jsonl: 0.5, (ok) 'x' \"y\"") == (
        "unknown_label in data/raw/a-b.jsonl: 0.5, (ok) 'x' \"y\""
    )
    assert escape("x" * 1000, limit=10) == "x" * 10 + "…"


@pytest.mark.parametrize(
    "text",
    ["```\n@octocat <img src=x>\n```\n", "~~~\nx\n~~~\n", "````\n````` \n    ```\n", "no newline"],
)
def test_no_line_can_close_a_code_block(text):
    out = render(code_block(text, "diff") + "\n\nafter @octocat")
    (code,) = re.findall(r"<pre[^>]*><code[^>]*>(.*?)</code></pre>", out, re.S)
    assert html.unescape(code) == (text if text.endswith("\n") else text + "\n")
    assert out.endswith("<p>after @octocat</p>\n")  # the block ended where it should


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([*"@#:/.<>[]!`|&\\w*_~$()-+=;\n\r\t ", "www.", "://", "&#", "GH-"]),
            st.characters(codec="utf-8"),  # what a report file can hold: no lone surrogates
        )
    ).map("".join)
)
def test_any_text_renders_as_itself_with_no_link_image_html_or_mention(text):
    escaped = escape(text)
    alone, in_cell = render(escaped), render(f"| h |\n|---|\n| {escaped} |")
    assert_inert(alone, {"p"})
    assert_inert(in_cell, TABLE_TAGS)
    assert seen(text_of(alone)) == expected(text) and cells(in_cell) == [[expected(text)]]


def metrics_for(labels: list[str], reasons: list[str]) -> dict:
    """A data report's numbers with hostile label names, rejection reasons and fields."""
    lengths = {"min": 1, "mean": 2.0, "p50": 2, "p95": 3, "max": 4}
    splits = ("train", "val", "test")
    return {
        "rows_in": 10, "rows_kept": 8, "rows_rejected": 2, "rejected_fraction": 0.2,
        "files_skipped": 1, "split": dict.fromkeys(splits, 1),
        "labels": {"topic": {s: dict.fromkeys(labels, 1) for s in splits}},
        "rejected": dict.fromkeys(reasons, 1), "redactions": {"EMAIL": 1},
        "chars": {"text": lengths},
    }  # fmt: skip


def test_the_data_report_shows_hostile_rows_names_and_files_as_text():
    short = [t for t in CORPUS if t.strip() and len(t) < 100]
    rejected = [Rejection(f"{t}:1", t, f"detail {t}", f"raw {t}") for t in short]
    skipped = {f"data/raw/{t}.txt": f"why {t}" for t in short}
    text = data_report.render_markdown(metrics_for(short, short), rejected, skipped, 1)
    charts = ["label_balance.png", "text_length.png"]
    for markdown, images in ((text, charts), (defuse(text), [])):  # defuse drops all images
        out = render(markdown)
        allowed = TABLE_TAGS | {"h1", "h2", "p", "code", "img", "ul", "li", "strong"}
        assert_inert(out, allowed)
        assert re.findall(r"<img src=\"([^\"]*)\"", out) == images
        rows = cells(out)
        for t in short:
            assert [expected(t), "1", "1", "1", "3"] in rows  # a label: 1 per split
            assert [expected(t), "1"] in rows  # a rejection reason
            assert [expected(f"data/raw/{t}.txt"), expected(f"why {t}")] in rows
        items = [seen(text_of(li)) for li in re.findall(r"<li>(.*?)</li>", out, re.S)]
        for r in rejected:
            line = f"{expected(r.where)} {expected(r.reason)}: {expected(r.detail)} — "
            assert seen(line + expected(r.raw, 120)) in items


def test_the_pull_request_report_shows_hostile_outputs_inputs_ids_and_params_as_text(
    tmp_path, monkeypatch, task
):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"report": {"examples": 20}})
    hostile = [t for t in CORPUS if t.strip() and len(t) < 100]
    metrics = dict.fromkeys(metric_names(task), 0.5)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps({"tuned": metrics, "base": metrics}))
    adapter = tmp_path / "models" / "adapter" / "training.json"
    adapter.parent.mkdir(parents=True)
    adapter.write_text(json.dumps({"run_id": "abc", "tracking_uri": "http://e.x @octocat"}))
    now = [hostile_record(i, t, i % 2 == 0) for i, t in enumerate(hostile)]
    main = [hostile_record(i, t, i % 2 == 1) for i, t in enumerate(hostile)]
    write_predictions(tmp_path / "data" / "eval" / "predictions.jsonl", now)
    write_examples(tmp_path / "metrics" / "eval_examples.csv", example_rows(task, now))
    main_rows = tmp_path / "main.csv"
    write_examples(main_rows, example_rows(task, main))
    main_params = yaml.safe_dump({"x": {f"k{i}": t for i, t in enumerate(hostile)}})
    # No git repository or DVC cache here: main's committed files come from this stand-in
    # for `git show`, its generated texts from one for `dvc.api.read`.
    files = {"eval_examples.csv": main_rows.read_text(), "params.yaml": main_params}
    monkeypatch.setattr(
        baseline, "at_ref", lambda ref, path, cwd=None: files.get(path.split("/")[-1])
    )
    monkeypatch.setattr(pullrequest, "baseline_outputs", lambda path, ref: {
        r.id: f"main {r.tuned.output}" for r in main})  # fmt: skip
    text = pullrequest.build(tmp_path / "params.yaml", "main", inputs(tmp_path))
    for markdown in (text, defuse(text)):
        out = render(markdown)
        allowed = TABLE_TAGS | {"h2", "h3", "p", "code", "pre", "em", "strong"}
        assert tags(out) <= allowed, tags(out) - allowed
        assert not live(text_of(re.sub(r"<pre.*?</pre>", "", out, flags=re.S)))
        rows = {r[0]: r for r in cells(out)}
        shown = [r for r in now if expected(r.id) in rows]
        assert len(shown) == 40  # 20 per direction
        for r in shown:
            assert rows[expected(r.id)][1:] == [
                expected(f"text: {r.inputs['text']}"), expected(json.dumps(r.reference)),
                expected(f"main {r.tuned.output}"), expected(r.tuned.output),
            ]  # fmt: skip
        for i, t in enumerate(hostile):
            assert rows[f"x.k{i}"] == [f"x.k{i}", expected(t), "(absent)"]
        assert expected("http://e.x @octocat") in text_of(out).replace(JOINER, "")


def hostile_record(i: int, text: str, ok: bool) -> Prediction:
    """tests.unit.report.test_report's record with `text` in its id, input and output."""
    base = record(i, ok, text)
    return replace(base, id=f"R{i} {text}", tuned=replace(base.tuned, output=text))
