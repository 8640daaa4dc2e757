"""Each raw-row rule: decoding, JSON, schema, labels, normalisation and length limits."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llmops.records import (
    REASONS,
    Rejection,
    Ticket,
    dedupe_key,
    normalize,
    parse_line,
    raw_files,
    read_lines,
)  # fmt: skip
from tests.conftest import ticket, write_raw


def parse(params, line, **prep_overrides):
    prep = dataclasses.replace(params.prep, **prep_overrides)
    if isinstance(line, dict):
        line = json.dumps(line)
    if isinstance(line, str):
        line = line.encode()
    return parse_line("f.jsonl:7", line, params.task, prep)


def test_valid_row_becomes_a_ticket(params):
    t = parse(params, ticket(split="test", channel="email"))
    assert isinstance(t, Ticket)
    assert (t.id, t.category, t.priority, t.pin, t.where) == (
        "T1",
        "shipping",
        "medium",
        "test",
        "f.jsonl:7",
    )
    assert t.record()["source"] == "f.jsonl:7" and "channel" not in t.record()


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b'{"id": "T1", "message": "caf\xc3"}', "invalid_utf8", "byte 0xc3 at 28"),
        ('{"id": "T1", "message": "hi",}', "malformed_json", "Expecting property name"),
        ("{'id': 'T1'}", "malformed_json", "column 2"),
        ("just some text", "malformed_json", "Expecting value"),
        ('["a", "b"]', "not_an_object", "a JSON array"),
        ("null", "not_an_object", "a JSON null"),
        ('"just a string"', "not_an_object", "a JSON string"),
        ("1" * 5000, "malformed_json", "ValueError: Exceeds the limit"),
        ("[" * 200_000, "malformed_json", "RecursionError"),
        (ticket(message="hi \ud800 there"), "invalid_utf8", "lone surrogate '\\ud800'"),
        (ticket(priority=None), "missing_field", "missing priority"),
        (ticket(message=None, reply=None), "missing_field", "missing message, reply"),
        (ticket(priority=2), "wrong_type", "priority: expected a string, got number"),
        (ticket(message=["hi"]), "wrong_type", "message: expected a string, got array"),
        (ticket(reply=None) | {"reply": None}, "wrong_type", "reply: expected a string, got null"),
        (ticket(id=17.5), "wrong_type", "id: expected a string, got number"),
        (ticket(id="  "), "wrong_type", "id: expected a non-empty string"),
        (ticket(category="misc"), "unknown_label", "category: 'misc' not in ['billing'"),
        (ticket(priority="P1"), "unknown_label", "priority: 'P1' not in ['low', 'medium', 'high', 'urgent']"),
        (ticket(category="Shipping"), "unknown_label", "category: 'Shipping'"),
        (ticket(split="holdout"), "invalid_split", "split: 'holdout' not in ['train', 'val', 'test']"),
        (ticket(message="  \t "), "empty_message", "empty after normalisation"),
        (ticket(message="\u200b"), "empty_message", "empty after normalisation"),
        (ticket(reply=""), "empty_reply", "empty after normalisation"),
        (ticket(message="x" * 2001), "too_long", "message: 2001 chars > 2000"),
        (ticket(reply="y" * 1001), "too_long", "reply: 1001 chars > 1000"),
    ],
)  # fmt: skip
def test_rejections_name_reason_and_detail(params, line, reason, detail):
    r = parse(params, line)
    assert isinstance(r, Rejection), r
    assert (r.reason, r.where) == (reason, "f.jsonl:7")
    assert detail in r.detail
    assert r.raw  # the row itself is kept for the quarantine
    assert reason in REASONS


def test_message_at_the_limit_is_kept(params):
    assert isinstance(parse(params, ticket(message="x" * 2000)), Ticket)
    assert isinstance(parse(params, ticket(message="x" * 50), max_message_chars=49), Rejection)


def test_normalisation():
    assert normalize("  Hello\t\tworld \n again ", "NFKC") == "Hello world again"
    assert normalize("ＡＢＣ１２３", "NFKC") == "ABC123"
    assert normalize("ＡＢＣ", "NFC") == "ＡＢＣ"
    assert normalize("zero\u200bwidth\x07bell", "NFKC") == "zerowidth bell"
    assert normalize("soft\u00adhyphen \u200eltr", "NFKC") == "softhyphen ltr"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # emoji joined by ZWJ stay whole
    assert normalize(f"hi {family}", "NFKC") == f"hi {family}"
    assert normalize("line\u2028break", "NFKC") == "line break"
    assert normalize("e\u0301", "NFC") == "\u00e9"


def test_dedupe_key_ignores_case_and_whitespace():
    assert dedupe_key("Where IS  my order") == dedupe_key("where is my order")
    assert dedupe_key("Straße") == dedupe_key("STRASSE")
    assert dedupe_key("order 1") != dedupe_key("order 2")


def test_read_lines_skips_blank_lines_and_bom_and_crlf(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf{}\r\n\n   \n[]\r\n{}")
    assert list(read_lines(path, "a.jsonl")) == [
        ("a.jsonl:1", b"{}"), ("a.jsonl:4", b"[]"), ("a.jsonl:5", b"{}"),
    ]  # fmt: skip


def test_raw_files_are_sorted_recursive_and_skip_hidden(tmp_path):
    write_raw(tmp_path / "raw", [ticket()], "b.jsonl")
    write_raw(tmp_path / "raw" / "sub", [ticket()], "a.jsonl")
    write_raw(tmp_path / "raw", [ticket()], ".hidden.jsonl")
    (tmp_path / "raw" / ".git-stuff").mkdir()
    write_raw(tmp_path / "raw" / ".git-stuff", [ticket()], "x.jsonl")
    names = [p.relative_to(tmp_path / "raw").as_posix() for p in raw_files(tmp_path / "raw")]
    assert names == ["b.jsonl", "sub/a.jsonl"]
    with pytest.raises(FileNotFoundError, match="raw data folder not found"):
        raw_files(tmp_path / "absent")
