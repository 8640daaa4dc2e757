"""Each raw-row rule, derived from the task declaration: decoding, formats (JSON Lines, CSV,
TSV, Parquet), the column mapping, types, labels, cleaning and length limits."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.data.records import (
    REASONS,
    Record,
    Rejection,
    dedupe_key,
    normalize,
    parse_json,
    parse_row,
    read_lines,
    read_rows,
)  # fmt: skip
from llmops.data.sources import raw_files
from tests.synthetic import write_csv, write_jsonl


def raw(**fields) -> dict:
    """A valid raw review row; keyword arguments override or (with None) remove columns."""
    row = {"uid": "R1", "review_text": "The lamp: solid and well made.", "topic": "quality",
           "sentiment": "positive", "summary": "Happy with the quality."}  # fmt: skip
    row.update(fields)
    return {k: v for k, v in row.items() if v is not None}


def parse(params, task, line, pin=None, **prep_overrides):
    prep = dataclasses.replace(params.prep, **prep_overrides)
    if isinstance(line, dict):
        line = json.dumps(line)
    if isinstance(line, str):
        line = line.encode()
    obj = parse_json("f.jsonl:7", line)
    if isinstance(obj, Rejection):
        return obj
    return parse_row("f.jsonl:7", obj, line.decode(), task, prep, pin)


def test_valid_row_becomes_a_record_under_the_tasks_field_names(params, task):
    r = parse(params, task, raw(split="test", channel="email"))
    assert isinstance(r, Record)
    assert (r.id, r.pin, r.where) == ("R1", "test", "f.jsonl:7")
    assert r.fields == {"text": "The lamp: solid and well made.", "topic": "quality",
                        "sentiment": "positive", "summary": "Happy with the quality."}  # fmt: skip
    assert r.row() == {"id": "R1", **r.fields, "source": "f.jsonl:7"}
    assert "channel" not in r.row()  # other columns are ignored


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b'{"uid": "R1", "review_text": "caf\xc3"}', "invalid_utf8", "byte 0xc3 at 33"),
        ('{"uid": "R1", "review_text": "hi",}', "malformed_json", "Expecting property name"),
        ("{'uid': 'R1'}", "malformed_json", "column 2"),
        ('["a", "b"]', "not_an_object", "a JSON array"),
        ("null", "not_an_object", "a JSON null"),
        ("1" * 5000, "malformed_json", "ValueError: Exceeds the limit"),
        ("[" * 200_000, "malformed_json", "RecursionError"),
        (raw(review_text="hi \ud800 there"), "invalid_utf8", "lone surrogate '\\ud800'"),
        (raw(sentiment=None), "missing_field", "missing sentiment"),
        (raw(review_text=None), "missing_field", "missing text (column 'review_text')"),
        (raw(uid=None), "missing_field", "missing id (column 'uid')"),
        (raw(sentiment=2), "wrong_type", "sentiment: expected a string, got number"),
        (raw(review_text=["hi"]), "wrong_type", "text (column 'review_text'): expected a string, got array"),
        (raw(summary={"a": 1}), "wrong_type", "summary: expected a string, got object"),
        (raw(uid=17.5), "wrong_type", "id (column 'uid'): expected a string, got number"),
        (raw(uid="  "), "wrong_type", "id (column 'uid'): expected a non-empty string"),
        (raw(topic="misc"), "unknown_label", "topic: 'misc' not in ['price', 'quality', 'delivery', 'service']"),
        (raw(sentiment="Positive"), "unknown_label", "sentiment: 'Positive'"),
        (raw(split="holdout"), "invalid_split", "split: 'holdout' not in ['train', 'val', 'test'] or empty"),
        (raw(review_text="  \t "), "empty_field", "text: empty after cleaning"),
        (raw(summary="\u200b"), "empty_field", "summary: empty after cleaning"),
        (raw(review_text="x" * 401), "too_long", "text: 401 chars > 400"),
        (raw(summary="y" * 201), "too_long", "summary: 201 chars > 200"),
    ],
)  # fmt: skip
def test_rejections_name_reason_and_detail(params, task, line, reason, detail):
    r = parse(params, task, line)
    assert isinstance(r, Rejection), r
    assert (r.reason, r.where) == (reason, "f.jsonl:7")
    assert detail in r.detail
    # A row is kept for the quarantine; what could not be parsed as one is not copied on.
    unparsed = reason in ("malformed_json", "not_an_object") or "byte" in r.detail
    assert (r.raw == "") == unparsed
    assert reason in REASONS


def test_limits_come_from_each_text_fields_max_chars(params, task):
    assert isinstance(parse(params, task, raw(review_text="x" * 400)), Record)
    assert isinstance(parse(params, task, raw(summary="y" * 200)), Record)


def test_integer_ids_are_kept_as_text_and_a_missing_id_column_is_allowed(params, task):
    assert parse(params, task, raw(uid=42)).id == "42"
    r = parse(params, task, raw(uid=None), id_column=None)
    assert isinstance(r, Record) and r.id == ""  # prep derives one from the inputs


def test_a_files_pin_wins_over_the_rows_own(params, task):
    # An official test file stays the test set, whatever its rows say.
    assert parse(params, task, raw(), pin="test").pin == "test"
    assert parse(params, task, raw(split="val"), pin="test").pin == "test"
    assert parse(params, task, raw(split="val"), pin=None).pin == "val"
    assert parse(params, task, raw(split=""), pin=None).pin is None
    assert parse(params, task, raw(split="test"), split_column=None).pin is None


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
    assert normalize("e\U000e0020\u0308", "NFC") == "\u00eb"  # joined once the tag goes
    assert normalize("\x01\ufe0f", "NFC") == ""  # a control is no symbol a builder follows


# Letters, accents, emoji, symbols NFKC turns into letters, controls and invisible ones.
TRICKY = st.text(
    st.sampled_from("ae\u0301\u0308\u200b\u200d\u034f\ufe0f\U000e0020\x01\x85 \t\u00a0"
                    "\u2800\u2764\u24d0\u2f0d\ufb01\uff21\uffa0\u3164\u1100\u1161"),
    max_size=8,
) | st.text(st.characters(), max_size=10)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(text=TRICKY, form=st.sampled_from(["NFC", "NFKC"]))
def test_cleaning_clean_text_changes_nothing(text, form):
    # A declared label must be its own label_key, and prep compares a row's label in that
    # form: cleaning must settle in one call.
    once = normalize(text, form)
    assert normalize(once, form) == once


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


def test_csv_rows_are_read_with_their_line_numbers(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"\xef\xbb\xbfutterance,intent\r\n"
        b'"hello, there",greet\r\n'
        b'"two\nlines",greet\r\n'
        b"too,many,cells\r\n"
        b"caf\xc3,greet\r\n"
        b"bye,leave\r\n"
    )
    rows = list(read_rows(path, "a.csv"))
    assert [where for where, _, _ in rows] == [  # the line a record starts on
        "a.csv:2",
        "a.csv:3",
        "a.csv:5",
        "a.csv:6",
        "a.csv:7",
    ]
    assert rows[0][1] == {"utterance": "hello, there", "intent": "greet"}
    assert rows[1][1] == {"utterance": "two\nlines", "intent": "greet"}
    assert rows[2][1].reason == "malformed_row" and "cells" in rows[2][1].detail
    assert rows[3][1].reason == "invalid_utf8" and "utterance" in rows[3][1].detail
    assert rows[4][1] == {"utterance": "bye", "intent": "leave"}


def test_tsv_and_parquet_are_read_too(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"utterance": "hi", "intent": "greet"}, {"utterance": "bye", "intent": "leave"}]
    tsv = write_csv(tmp_path / "a.tsv", rows, delimiter="\t")
    assert [obj for _, obj, _ in read_rows(tsv, "a.tsv")] == rows
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    got = list(read_rows(tmp_path / "b.parquet", "b.parquet"))
    assert [(w, obj) for w, obj, _ in got] == [("b.parquet:1", rows[0]), ("b.parquet:2", rows[1])]


def test_raw_files_are_sorted_recursive_and_list_hidden_paths_and_what_is_not_data(tmp_path):
    folder = tmp_path / "raw"
    write_jsonl(folder / "b.jsonl", [raw()])
    write_jsonl(folder / "sub" / "a.jsonl", [raw()])
    write_csv(folder / "c.CSV", [raw()])
    write_jsonl(folder / ".hidden.jsonl", [raw()])
    write_jsonl(folder / ".git-stuff" / "x.jsonl", [raw()])
    (folder / "README.md").write_text("notes")
    (folder / "export.xlsx").write_bytes(b"PK\x03\x04")
    files = raw_files(folder)
    assert [p.relative_to(folder).as_posix() for p in files.read] == [
        "b.jsonl", "c.CSV", "sub/a.jsonl",
    ]  # fmt: skip
    names = (".git-stuff", ".hidden.jsonl", "README.md", "export.xlsx")
    assert sorted(files.skipped) == [(folder / n).as_posix() for n in names]
    assert files.skipped[(folder / ".hidden.jsonl").as_posix()].startswith("hidden")
    assert (
        "not a data file (.jsonl, .ndjson, .csv, .tsv, .parquet, optionally .gz)"
        in files.skipped[(folder / "export.xlsx").as_posix()]
    )
    with pytest.raises(FileNotFoundError, match="raw data folder not found"):
        raw_files(tmp_path / "absent")
