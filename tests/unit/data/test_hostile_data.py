"""Hostile raw data, round two: prep never turns one row into many, never reads the same
column twice, never mixes two files up, never follows a link out of the raw folder, never
copies what it could not parse, and reads any number of rows in bounded memory. In every
case rows in = rows kept + rows quarantined."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.data.records import read_rows
from llmops.data.sources import Limits, display
from llmops.report.data_report import MAX_BARS, _bars
from tests.synthetic import project_files, review_rows, run_prep, write_jsonl

COLUMNS = ("uid", "review_text", "topic", "sentiment", "summary")


def outcome(out: Path) -> tuple[dict, list[dict], list[dict]]:
    """(metrics, kept rows of every split, quarantined rows); checks rows in = kept + out."""
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    quarantined = [json.loads(line) for line in (out / "q" / "rejected.jsonl").open()]
    kept = []
    for split in ("train", "val", "test"):
        path = out / "prepared" / f"{split}.jsonl"
        kept += (
            [json.loads(line) | {"split": split} for line in path.open()] if path.exists() else []
        )
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_rejected"]
    assert metrics["rows_rejected"] == len(quarantined)
    assert not kept or metrics["rows_kept"] == len(kept)
    return metrics, kept, quarantined


def fails(root: Path) -> str:
    with pytest.raises(SystemExit) as exit_:
        run_prep(root)
    return str(exit_.value)


def csv_text(rows: list[dict]) -> str:
    return (
        ",".join(COLUMNS)
        + "\n"
        + "".join(",".join(f'"{r[c]}"' for c in COLUMNS) + "\n" for r in rows)
    )


# --- one record is one row -------------------------------------------------------------------


def test_a_huge_quoted_cell_with_line_breaks_stays_one_row(tmp_path):
    rows = review_rows(40)
    root = project_files(tmp_path / "p", rows[:37])
    big = "\n".join(f"fragment {i}, with, commas" for i in range(8000))  # ~200 KiB, > csv's 128
    cell = dict(rows[37], review_text=big)
    (root / "data" / "raw" / "big.csv").write_text(csv_text([rows[38], cell, rows[39]]))
    metrics, kept, quarantined = outcome(run_prep(root))
    assert metrics["rows_in"] == 37 + 3  # not one row per fragment of the cell
    [rejected] = quarantined
    assert (rejected["source"].endswith("big.csv"), rejected["line"]) == (True, 3)
    assert rejected["reason"] == "too_long" and rejected["detail"].startswith("text: ")
    assert {r["id"] for r in kept} >= {rows[38]["uid"], rows[39]["uid"]}
    assert not any("fragment" in r["text"] for r in kept)


def test_a_row_past_max_row_kb_is_too_long_unread_and_the_next_rows_are_read(tmp_path):
    rows = review_rows(30)
    root = project_files(tmp_path / "p", rows[:27], {"prep": {"max_row_kb": 4}})
    huge = dict(rows[27], review_text="word " * 2000)
    write_jsonl(root / "data" / "raw" / "z.jsonl", [rows[28], huge, rows[29]])
    (root / "data" / "raw" / "z.csv").write_text(csv_text([dict(huge, uid="C1")]))
    metrics, _kept, quarantined = outcome(run_prep(root))
    assert metrics["rows_in"] == 27 + 3 + 1 and metrics["rows_kept"] == 29
    for q in quarantined:
        assert q["reason"] == "too_long" and "over prep.max_row_kb=4" in q["detail"]
        assert q["raw"] == ""  # not read, not copied


@pytest.mark.parametrize(
    "record",
    [
        'R9,"ab"c,price,neutral,s\n',  # text after a closing quote
        'R9,"a\nb"c,"x\ny",neutral,s\n',  # the same, in a record of three lines
        "R9,a,b,c\n",  # too few cells
        'R9,"never closed,price,neutral,s\nR10,text,price,neutral,s\n',  # to the end
    ],
)
def test_a_malformed_record_is_one_rejection_at_its_first_line(tmp_path, record):
    plain = [f"P{i},plain review {i},price,neutral,ok\n" for i in range(5)]
    text = ",".join(COLUMNS) + "\n" + "".join(plain[:2]) + record + "".join(plain[2:])
    (tmp_path / "a.csv").write_text(text)
    got = list(read_rows(tmp_path / "a.csv", "a.csv"))
    bad = [(where, obj.reason) for where, obj, _ in got if not isinstance(obj, dict)]
    assert bad == [("a.csv:4", "malformed_row")]
    good = [obj["uid"] for _, obj, _ in got if isinstance(obj, dict)]
    unclosed = "never closed" in record  # runs to the end: what follows is inside it
    assert good == [f"P{i}" for i in range(2 if unclosed else 5)]
    lines = [int(where.rsplit(":", 1)[1]) for where, _, _ in got]
    assert lines == (
        [2, 3, 4]
        if unclosed
        else [
            2,
            3,
            4,
            5 + record.count("\n") - 1,
            6 + record.count("\n") - 1,
            7 + record.count("\n") - 1,
        ]
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.lists(st.text('ab,"\r\n \u00e9', max_size=12), min_size=2, max_size=2),
        min_size=1,
        max_size=6,
    ),
    chunk=st.integers(2, 9),
    newline=st.sampled_from(["\n", "\r\n"]),
    quote_all=st.booleans(),
)
def test_csv_records_are_what_the_csv_module_reads_whatever_the_piece_size(
    tmp_path, monkeypatch, cells, chunk, newline, quote_all
):
    """The record finder reads pieces of CHUNK characters; with tiny pieces every quote, \r
    and \n falls on a boundary somewhere. Rows must be the csv module's, one for one."""
    from llmops.data import csvrows

    monkeypatch.setattr(csvrows, "CHUNK", chunk)
    if not quote_all and newline == "\n":  # csv.writer would leave a lone \r unquoted
        cells = [[c.replace("\r", "") for c in row] for row in cells]
    out = io.StringIO(newline="")
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(out, lineterminator=newline, quoting=quoting).writerows([["a", "b"], *cells])
    (tmp_path / "x.csv").write_bytes(out.getvalue().encode())
    got = [obj for _, obj, _ in read_rows(tmp_path / "x.csv", "x.csv")]
    expected = [
        dict(zip(["a", "b"], row, strict=True))
        for row in csv.reader(io.StringIO(out.getvalue(), newline=""))
    ][1:]
    assert got == expected
    lines = [int(w.rsplit(":", 1)[1]) for w, _, _ in read_rows(tmp_path / "x.csv", "x.csv")]
    starts, line = [], 2  # where each record starts: after the header and the records before
    for row in cells:
        starts.append(line)
        line += sum(c.count("\n") + c.count("\r") - c.count("\r\n") for c in row) + 1
    assert lines == starts


def test_a_long_cell_of_quotes_across_read_pieces_stays_one_cell(tmp_path):
    from llmops.data import csvrows

    for k in range(1, 8):  # a run of quotes (pairs) and a CRLF on every possible boundary
        cell = "a" * (csvrows.CHUNK - k) + '""' * 3 + "\nmallory@example.com,other\nsecret"
        text = f'text,label\r\n"{cell}",x\r\ne,f\r\n'
        (tmp_path / "a.csv").write_bytes(text.encode())
        got = [(w, obj) for w, obj, _ in read_rows(tmp_path / "a.csv", "a.csv")]
        assert got == [("a.csv:2", {"text": cell.replace('""', '"'), "label": "x"}),
                       ("a.csv:5", {"text": "e", "label": "f"})], k  # fmt: skip


# --- one column, one meaning -----------------------------------------------------------------


def test_a_column_or_key_given_twice_is_rejected_naming_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = review_rows(24)
    root = project_files(tmp_path / "p", rows[:20])
    raw = root / "data" / "raw"
    header = "uid,review_text,topic,sentiment,summary,review_text\n"
    (raw / "twice.csv").write_text(header + "C1,first text,price,neutral,s,second text\n")
    line = json.dumps(rows[20])[:-1] + ', "topic": "service"}'  # the label given twice
    write_jsonl(raw / "twice.jsonl", [line])
    table = pa.Table.from_arrays(
        [pa.array([rows[21][c]]) for c in COLUMNS] + [pa.array(["other"])],
        names=[*COLUMNS, "sentiment"],
    )
    pq.write_table(table, raw / "twice.parquet")
    # A column that is not read may repeat (an export's empty trailing headers do).
    header_ok = "uid,review_text,topic,sentiment,summary,,\n"
    (raw / "ok.csv").write_text(header_ok + f"C9,{rows[22]['review_text']},price,neutral,s,,\n")
    metrics, kept, quarantined = outcome(run_prep(root))
    reasons = {q["source"].rsplit("/", 1)[1]: (q["reason"], q["detail"]) for q in quarantined}
    assert reasons == {
        "twice.csv": ("duplicate_column", "text (column 'review_text'): the column appears more than once; rename the others"),
        "twice.jsonl": ("duplicate_column", "topic: the column appears more than once; rename the others"),
        "twice.parquet": ("duplicate_column", "sentiment: the column appears more than once; rename the others"),
    }  # fmt: skip
    assert metrics["rejected"]["duplicate_column"] == 3 and "C9" in {r["id"] for r in kept}


# --- names -----------------------------------------------------------------------------------


def test_display_tells_every_name_apart():
    names = ["a\n.jsonl", "a\\x0a.jsonl", "a\\\\x0a.jsonl", os.fsdecode(b"a\x85.jsonl"),
             "a\x85.jsonl", "a\u202e.jsonl", "a\u00a0.jsonl", "a .jsonl", "naïve.jsonl"]  # fmt: skip
    shown = [display(n) for n in names]
    assert len(set(shown)) == len(names), shown
    assert all(s.isprintable() for s in shown)
    assert shown[0] == "a\\x0a.jsonl" and shown[1] == "a\\\\x0a.jsonl"
    assert shown[3] == "a\\x85.jsonl" and shown[4] == "a\\u0085.jsonl"
    assert shown[-1] == "naïve.jsonl"


def test_two_files_that_used_to_display_alike_keep_their_own_rows_and_pins(tmp_path):
    rows = review_rows(60)
    root = project_files(
        tmp_path / "p", rows[:40], {"prep": {"pin_files": {"test": ["a\n.jsonl"]}}}
    )
    raw = root / "data" / "raw"
    try:
        write_jsonl(raw / "a\n.jsonl", rows[40:50])
    except OSError:
        pytest.skip("this file system refuses a line break in a file name")
    write_jsonl(raw / "a\\x0a.jsonl", rows[50:])
    _, kept, _ = outcome(run_prep(root))
    split_of = {
        r["id"]: (r["split"], r["source"].rsplit("/", 1)[1].rsplit(":", 1)[0]) for r in kept
    }
    assert {split_of[r["uid"]] for r in rows[40:50]} == {("test", "a\\x0a.jsonl")}
    assert {src for _, src in (split_of[r["uid"]] for r in rows[50:])} == {"a\\\\x0a.jsonl"}
    assert sum(split_of[r["uid"]][0] == "test" for r in rows[50:]) < 10  # not all pinned


def test_a_file_name_holding_pii_is_not_read_and_not_shown(tmp_path, caplog):
    rows = review_rows(30)
    root = project_files(tmp_path / "p", rows[:20])
    raw = root / "data" / "raw"
    names = ["export-jane.doe@example.com.jsonl", "call-555-123-4567.jsonl",
             "4111 1111 1111 1111.jsonl", "536-22-1234.jsonl",  # read, were they not PII
             ".ann@example.com.jsonl", "bob@example.com.txt"]  # not read anyway  # fmt: skip
    for name in names:
        write_jsonl(raw / name, rows[20:22])
    write_jsonl(raw / "export-2026-09-30-123456.jsonl", rows[22:])  # a dated name is fine
    with caplog.at_level("INFO"):
        metrics, kept, _ = outcome(run_prep(root))
    assert metrics["rows_in"] == 28 and metrics["files_skipped"] == len(names)
    report = (root / "out" / "report" / "data_report.md").read_text(encoding="utf-8")
    shown = report + caplog.text + json.dumps(kept)
    for leak in ("jane", "555-123", "4111", "536-22", "ann@", "bob@"):
        assert leak not in shown, leak
    for kind in ("EMAIL", "PHONE", "CARD"):  # the tests' params redact no SSN: a PHONE here
        assert f"a name holding {kind}" in report
    assert "the file name holds PII (EMAIL): rename it" in report


# --- links and what is copied ------------------------------------------------------------------


def test_a_link_out_of_the_raw_folder_leaks_nothing(tmp_path):
    rows = review_rows(20)
    root = project_files(tmp_path / "p", rows)
    raw = root / "data" / "raw"
    (raw / "environ.jsonl").symlink_to("/proc/self/environ")
    secret = tmp_path / "credentials.csv"
    secret.write_text("uid,review_text,topic,sentiment,summary\nX,canary-7f3a,price,neutral,s\n")
    (raw / "creds.csv").symlink_to(secret)
    env = {**os.environ, "CANARY_TOKEN": "canary-1b9e"}
    code = "import sys; from llmops.stages.prep import main; main(sys.argv[1:])"
    out = root / "out"
    args = ["--params", str(root / "params.yaml"), "--raw", str(raw), "--out",
            str(out / "prepared"), "--quarantine", str(out / "q"), "--report",
            str(out / "report"), "--metrics", str(out / "metrics.json")]  # fmt: skip
    subprocess.run([sys.executable, "-c", code, *args], env=env, check=True,
                   capture_output=True)  # fmt: skip
    metrics, _, _ = outcome(out)
    assert metrics["rows_in"] == 20 and metrics["files_skipped"] == 2
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"canary-1b9e" not in data and b"canary-7f3a" not in data, path


def test_what_could_not_be_parsed_is_not_copied_into_the_quarantine(tmp_path):
    rows = review_rows(20)
    root = project_files(tmp_path / "p", rows)
    foreign = [
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\0HOME=/root",
        '{"uid": "X1", "review_text": "oops"',  # cut short
        '["a", "list", "of", "tokens"]',
        b'{"uid": "X2", "review_text": "caf\xc3 hf_abcdefghijklmnopqrstuvwxyzABCD"}',
    ]
    write_jsonl(root / "data" / "raw" / "z.jsonl", foreign)
    metrics, _, quarantined = outcome(run_prep(root))
    assert metrics["rows_rejected"] == 4
    assert [q["raw"] for q in quarantined] == ["", "", "", ""]
    stored = (root / "out" / "q" / "rejected.jsonl").read_text() + (
        root / "out" / "report" / "data_report.md"
    ).read_text()
    assert "wJalrXUtnFEMI" not in stored and "hf_abcdef" not in stored and "HOME=" not in stored


def test_a_deeply_nested_row_is_quarantined_not_a_crash(tmp_path):
    rows = review_rows(20)
    root = project_files(tmp_path / "p", rows)
    nested = {"deep": json.loads("[" * 600 + "]" * 600)}
    write_jsonl(
        root / "data" / "raw" / "z.jsonl", [dict(rows[0], uid="N1", topic="misc", **nested)]
    )
    _metrics, _, quarantined = outcome(run_prep(root))
    assert [q["reason"] for q in quarantined] == ["unknown_label"]


# --- labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["exact", "fold"])
def test_label_spellings_prep_reads_as_the_declared_label(tmp_path, case):
    rows = review_rows(24)
    spelled = ["price ", "\u200bprice", "pri\u200dce", "\u202aprice\u202c", " quality\t",
               unicodedata.normalize("NFD", "café")]  # fmt: skip
    values = ["price", "quality", "delivery", "service", "café"]
    override = {"task": {"outputs": {"topic": {"kind": "label", "values": values}}},
                "prep": {"label_case": case}}  # fmt: skip
    root = project_files(tmp_path / "p", rows[:18], override)
    extra = [dict(r, topic=t) for r, t in zip(rows[18:24], spelled, strict=True)]
    upper = dict(rows[0], uid="K1", review_text="another review", topic="Price")
    write_jsonl(root / "data" / "raw" / "z.jsonl", [*extra, upper])
    _, kept, quarantined = outcome(run_prep(root))
    topics = {r["id"]: r["topic"] for r in kept}
    assert [topics[r["uid"]] for r in extra] == ["price"] * 4 + ["quality", "café"]
    if case == "exact":
        assert [(q["reason"], q["detail"][:22]) for q in quarantined] == [
            ("unknown_label", "topic: 'Price' not in ")
        ]
    else:
        assert quarantined == [] and topics["K1"] == "price"


def test_a_label_that_looks_like_math_is_drawn_as_written(tmp_path):
    labels = ["$\\frac{a$", "50% $off", "price"]
    override = {"task": {"outputs": {"topic": {"kind": "label", "values": labels}}}}
    rows = [dict(r, topic=labels[i % 3]) for i, r in enumerate(review_rows(60))]
    metrics, _, _ = outcome(run_prep(project_files(tmp_path / "p", rows, override)))
    assert list(metrics["labels"]["topic"]["train"]) == labels


def test_a_parquet_row_past_max_row_kb_is_too_long(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = review_rows(4)
    rows[1]["review_text"] = "word " * 2000
    path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    got = list(read_rows(path, "a.parquet", limits=Limits(row_bytes=4096)))
    assert [o.reason if not isinstance(o, dict) else "row" for _, o, _ in got] == [
        "row",
        "too_long",
        "row",
        "row",
    ]
    [(where, stopped, _)] = read_rows(path, "a.parquet", limits=Limits(file_bytes=1000))
    assert (where, stopped.reason) == ("a.parquet:1", "unreadable")
    assert "expands past" in stopped.detail and "prep.max_file_mb" in stopped.detail


# --- bounded resources -----------------------------------------------------------------------


def test_a_file_that_expands_past_max_file_mb_stops_prep_naming_it(tmp_path):
    rows = review_rows(30)
    root = project_files(tmp_path / "p", rows[:30], {"prep": {"max_file_mb": 1}})
    line = (json.dumps(rows[0]) + "\n").encode()
    (root / "data" / "raw" / "bomb.jsonl.gz").write_bytes(gzip.compress(line * 20_000, 9))
    assert (root / "data" / "raw" / "bomb.jsonl.gz").stat().st_size < 20_000  # 5 MB inside
    message = fails(root)
    assert "bomb.jsonl.gz" in message and "expands past 1 MB (prep.max_file_mb)" in message
    metrics, _, _quarantined = outcome(root / "out")
    assert metrics["rejected"]["unreadable"] == 1 and metrics["rows_in"] < 30 + 20_000
    plain = root / "data" / "raw" / "bomb.jsonl.gz"
    plain.unlink()
    (root / "data" / "raw" / "big.jsonl").write_bytes(line * 6000)  # known large before reading
    got = list(read_rows(root / "data" / "raw" / "big.jsonl", "big.jsonl", limits=Limits(MB_1)))
    assert [(w, o.reason) for w, o, _ in got] == [("big.jsonl:1", "unreadable")]


MB_1 = 1 << 20


# VmHWM: the peak resident memory of this process image (ru_maxrss would also count the
# parent's memory at the fork that started it).
PEAK = """
import re, sys
from pathlib import Path
from llmops.config.params import load_params
from llmops.stages.prep import prep
from llmops.config.task import Task
root = Path(sys.argv[1])
params = load_params(root / "params.yaml")
with prep(Task.from_params(params.task), params.prep, root / "data" / "raw") as result:
    assert result.rows_in == int(sys.argv[2]), result.rows_in
status = open("/proc/self/status").read()
print(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


def test_memory_does_not_grow_with_rows(tmp_path):
    """Peak memory of prep on 4,000 and on 24,000 rows of one gzip file (all copies of a
    few rows, as in a decompression bomb): the rows are not held, only their hashes."""
    rows = review_rows(5)
    peaks = {}
    for n in (4_000, 24_000):
        root = project_files(tmp_path / str(n), [])
        body = "".join(json.dumps(rows[i % 5]) + "\n" for i in range(n)).encode()
        (root / "data" / "raw" / "reviews.jsonl").write_bytes(gzip.compress(body))
        done = subprocess.run([sys.executable, "-c", PEAK, str(root), str(n)], check=True,
                              capture_output=True, text=True)  # fmt: skip
        peaks[n] = int(done.stdout.split()[-1]) / 1024  # MB
    # Rows held in memory would cost about 2 KB each: 40 MB more for the larger run.
    assert peaks[24_000] - peaks[4_000] < 10, peaks


# --- many labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_label", "advice"),
    [
        (2, "no fraction can: the largest label has 2 unpinned input(s)"),
        (3, "raise prep.val_fraction and prep.test_fraction to at least 0.17"),
    ],
)
def test_many_small_labels_get_advice_that_works_and_a_chart_that_is_drawn(
    tmp_path, per_label, advice
):
    labels = [f"label-{i}" for i in range(150)]
    override = {"task": {"outputs": {"topic": {"kind": "label", "values": labels}}},
                "prep": {"test_fraction": 0.1, "val_fraction": 0.1}}  # fmt: skip
    rows = [
        dict(r, topic=labels[i // per_label]) for i, r in enumerate(review_rows(150 * per_label))
    ]
    root = project_files(tmp_path / "p", rows, override)
    message = fails(root)
    assert "the val and test split(s) would be empty" in message and advice in message
    metrics, _, _ = outcome(root / "out")
    drawn, counts = _bars(metrics["labels"]["topic"])
    assert len(drawn) == MAX_BARS and drawn[-1] == f"other ({150 - MAX_BARS + 1} labels)"
    assert sum(map(sum, counts.values())) == 150 * per_label
    assert (root / "out" / "report" / "label_balance.png").stat().st_size > 0
    if per_label == 3:  # the advice works: every split gets rows
        override["prep"] = {"test_fraction": 0.17, "val_fraction": 0.17}
        root = project_files(tmp_path / "q", rows, override)
        metrics, _, _ = outcome(run_prep(root))
        assert min(metrics["split"].values()) > 0, metrics["split"]
