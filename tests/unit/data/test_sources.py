"""Raw files as users have them: odd names, encodings, compression, links and special files,
duplicate ids; every path either read or listed with its reason, outputs whole or absent."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.data.records import REASONS, Rejection, parse_row, read_rows
from llmops.data.sources import NotDataError, display, raw_files
from llmops.stages import prep as prep_stage
from tests.synthetic import project_files, review_rows, run_prep, write_jsonl

# Non-UTF-8 bytes in a file name are possible on Linux; some file systems refuse them.
BAD_NAME = os.fsdecode(b"caf\xe9-export.jsonl")


def lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def quarantined(out: Path) -> list[dict]:
    text = (out / "q" / "rejected.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_a_file_name_that_is_not_utf8_is_read_and_shown_escaped(tmp_path):
    rows = review_rows(40)
    root = project_files(tmp_path / "p", rows[:30])
    try:
        (root / "data" / "raw" / BAD_NAME).write_bytes(lines([*rows[30:], {"uid": "x"}]))
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    out = run_prep(root)
    assert metrics(out)["rows_in"] == 41 and metrics(out)["rows_kept"] == 40
    [rejected] = quarantined(out)
    assert rejected["source"].endswith("caf\\xe9-export.jsonl") and rejected["line"] == 11
    sources = {json.loads(line)["source"].rsplit("/", 1)[1].split(":")[0]
               for split in ("train", "val", "test")
               for line in (out / "prepared" / f"{split}.jsonl").read_text("utf-8").splitlines()}  # fmt: skip
    assert sources == {"reviews.jsonl", "caf\\xe9-export.jsonl"}


def test_display_escapes_undecodable_bytes_and_control_characters():
    assert display(os.fsdecode(b"a\xff\xfeb.csv")) == "a\\xff\\xfeb.csv"
    assert display("x\ny\x1b.jsonl") == "x\\x0ay\\x1b.jsonl"
    assert display("naïve.jsonl") == "naïve.jsonl"


@pytest.mark.parametrize(
    ("name", "encode", "note"),
    [
        ("a.jsonl.gz", gzip.compress, "gzip-compressed"),
        ("a.jsonl", gzip.compress, "gzip-compressed"),  # gzip whatever the name says
        ("a.jsonl", lambda b: b.decode().encode("utf-16"), "UTF-16 with a byte-order mark"),
        ("a.jsonl", lambda b: b.decode().encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16 with a byte-order mark"),
        ("a.jsonl", lambda b: b.decode().encode("utf-32"), "UTF-32 with a byte-order mark"),
        ("a.jsonl.gz", lambda b: gzip.compress(b.decode().encode("utf-16")), "gzip-compressed, UTF-16 with a byte-order mark"),
        ("a.jsonl", lambda b: b"\xef\xbb\xbf" + b, ""),
    ],
)  # fmt: skip
def test_compressed_and_utf16_files_are_read_like_plain_ones(tmp_path, name, encode, note):
    rows = review_rows(3)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / name).write_bytes(encode(lines(rows)))
    files = raw_files(raw)
    assert list(files.read) == [raw / name] and files.skipped == {}
    assert files.notes == ({(raw / name).as_posix(): note} if note else {})
    got = [obj for _, obj, _ in read_rows(raw / name, name)]
    assert got == rows


def test_csv_in_utf16_is_read(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("utterance,intent\nhello é,greet\n".encode("utf-16"))
    assert [obj for _, obj, _ in read_rows(path, "a.csv")] == [
        {"utterance": "hello é", "intent": "greet"}
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.jsonl", '{"uid": "R1"}\n{"uid": "R2"}\n'.encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
        ("a.csv", "uid,text\nR1,hello\n".encode("utf-16-be"), "UTF-16 text without a byte-order mark"),
        ("a.jsonl", '{"uid": "R1"}\n{"uid": "R2"}\n'.encode("utf-32-le"), "UTF-32 text without a byte-order mark"),
        ("a.jsonl", b"PK\x03\x04" + b"\x00" * 40, "zip-compressed: unpack it"),
        ("a.csv", b"BZh91AY&SY" + b"\x01" * 40, "bzip2-compressed"),
        ("a.jsonl", b"\xfd7zXZ\x00" + b"\x01" * 40, "xz-compressed"),
        ("a.parquet", b"not parquet at all", "not a Parquet file"),
        ("a.jsonl.gz", b"\x1f\x8bnot really gzip", "a gzip file that cannot be decompressed"),
        ("notes.txt.gz", gzip.compress(b"hi"), "not a data file"),
    ],
)  # fmt: skip
def test_files_that_cannot_be_read_are_listed_with_the_reason(tmp_path, name, content, reason):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / name).write_bytes(content)
    files = raw_files(raw)
    assert files.read == {}
    assert reason in files.skipped[(raw / name).as_posix()]


def test_links_and_special_files_are_listed_not_followed_or_opened(tmp_path):
    rows = review_rows(30)
    root = project_files(tmp_path / "p", rows[:20])
    raw = root / "data" / "raw"
    elsewhere = tmp_path / "elsewhere"
    write_jsonl(elsewhere / "more.jsonl", rows[20:25])
    write_jsonl(tmp_path / "single.jsonl", rows[25:])
    (raw / "linked-dir").symlink_to(elsewhere, target_is_directory=True)
    (raw / "dangling.jsonl").symlink_to(tmp_path / "gone.jsonl")
    write_jsonl(raw / ".store" / "single.jsonl", rows[25:])
    (raw / "linked.jsonl").symlink_to(raw / ".store" / "single.jsonl")  # inside raw: read
    (raw / "outside.jsonl").symlink_to(tmp_path / "single.jsonl")  # leads out: not read
    (raw / "environ.jsonl").symlink_to("/proc/self/environ")
    os.mkfifo(raw / "pipe.jsonl")  # opening it would block prep forever
    out = run_prep(root)
    m = metrics(out)
    assert m["rows_in"] == 25 and m["files_skipped"] == 6
    report = (out / "report" / "data_report.md").read_text(encoding="utf-8")
    for name, why in [("linked-dir", "symbolic link to a directory"),
                      ("dangling.jsonl", "dangling symbolic link"),
                      ("outside.jsonl", "a symbolic link to a file outside the raw data folder"),
                      ("environ.jsonl", "a symbolic link to a file outside the raw data folder"),
                      (".store", "hidden"),
                      ("pipe.jsonl", "FIFO")]:  # fmt: skip
        line = next(line for line in report.splitlines() if name in line)
        assert why in line


def test_the_data_report_says_which_files_were_decoded_how(tmp_path):
    rows = review_rows(40)
    root = project_files(tmp_path / "p", rows[:20])
    raw = root / "data" / "raw"
    (raw / "b.jsonl.gz").write_bytes(gzip.compress(lines(rows[20:30])))
    (raw / "c.jsonl").write_bytes(lines(rows[30:]).decode().encode("utf-16"))
    out = run_prep(root)
    assert metrics(out)["rows_kept"] == 40
    report = (out / "report" / "data_report.md").read_text(encoding="utf-8")
    section = report.split("## Files decoded before reading")[1].split("##")[0]
    assert "b.jsonl.gz | gzip-compressed |" in section
    assert "c.jsonl | UTF-16 with a byte-order mark |" in section


def test_a_file_that_breaks_partway_stops_prep_naming_it(tmp_path):
    rows = review_rows(60)
    root = project_files(tmp_path / "p", rows[:30])
    whole = gzip.compress(lines(rows[30:]))
    (root / "data" / "raw" / "more.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(SystemExit) as exit_:
        run_prep(root)
    message = str(exit_.value)
    assert "1 file(s) cannot be read to the end" in message and "more.jsonl.gz:" in message
    out = root / "out"
    m = metrics(out)
    assert m["rejected"]["unreadable"] == 1 and 30 < m["rows_kept"] < 60  # rows before it
    assert m["rows_in"] == m["rows_kept"] + m["rows_rejected"]
    [bad] = [q for q in quarantined(out) if q["reason"] == "unreadable"]
    assert bad["source"].endswith("more.jsonl.gz") and "EOFError" in bad["detail"]
    assert not (out / "prepared").exists()


@pytest.mark.parametrize("name", ["b.csv.gz", "b.tsv.gz"])
def test_a_truncated_csv_keeps_the_rows_before_the_damage(tmp_path, name):
    sep = "\t" if name.startswith("b.tsv") else ","
    text = f"uid{sep}review_text\n" + "".join(f"R{i}{sep}text {i}\n" for i in range(2000))
    whole = gzip.compress(text.encode())
    (tmp_path / name).write_bytes(whole[: len(whole) // 2])
    got = list(read_rows(tmp_path / name, name))
    kept = [obj for _, obj, _ in got if isinstance(obj, dict)]
    assert len(kept) > 100 and kept[0] == {"uid": "R0", "review_text": "text 0"}
    assert [obj.reason for _, obj, _ in got if isinstance(obj, Rejection)] == ["unreadable"]
    assert len(got) == len(kept) + 1


def test_a_gzipped_tsv_is_split_on_tabs(tmp_path):
    (tmp_path / "a.tsv.gz").write_bytes(gzip.compress(b"uid\ttext\nR1\thello, there\n"))
    assert [obj for _, obj, _ in read_rows(tmp_path / "a.tsv.gz", "a.tsv.gz")] == [
        {"uid": "R1", "text": "hello, there"}
    ]


def test_a_damaged_parquet_file_stops_prep(tmp_path):
    root = project_files(tmp_path / "p", review_rows(30))
    (root / "data" / "raw" / "b.parquet").write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    with pytest.raises(SystemExit, match=r"cannot be read to the end.*b.parquet:1"):
        run_prep(root)
    assert metrics(root / "out")["rejected"]["unreadable"] == 1


def test_a_folder_that_cannot_be_listed_is_listed_as_not_read(tmp_path, monkeypatch):
    # Tests may run as root, who can list any folder: the refusal is simulated.
    root = project_files(tmp_path / "p", review_rows(30))
    locked = root / "data" / "raw" / "locked"
    write_jsonl(locked / "x.jsonl", review_rows(5, seed=4))
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    out = run_prep(root)
    assert metrics(out)["rows_in"] == 30 and metrics(out)["files_skipped"] == 1
    report = (out / "report" / "data_report.md").read_text(encoding="utf-8")
    assert "a folder that cannot be listed (Permission denied)" in report


def test_duplicate_ids_are_quarantined_with_the_row_that_kept_the_id(tmp_path):
    rows = review_rows(40)
    clash = dict(rows[39], uid=rows[3]["uid"])  # other text, a used id
    root = project_files(tmp_path / "p", [*rows[:39], clash])
    out = run_prep(root)
    m = metrics(out)
    assert m["rejected"]["duplicate_id"] == 1 and m["rows_kept"] == 39
    [q] = quarantined(out)
    assert q["reason"] == "duplicate_id" and q["line"] == 40
    assert f"id '{rows[3]['uid']}' is already used by" in q["detail"] and q["detail"].endswith(":4")
    assert set(REASONS) == set(m["rejected"])


def test_a_pinned_row_keeps_its_id_whatever_the_file_order(tmp_path):
    rows = review_rows(40)
    root = project_files(tmp_path / "p", rows[:39], {"prep": {"pin_files": {"test": ["z-*"]}}})
    write_jsonl(root / "data" / "raw" / "z-test.jsonl", [dict(rows[39], uid=rows[3]["uid"])])
    out = run_prep(root)
    [q] = quarantined(out)
    assert q["reason"] == "duplicate_id" and q["source"].endswith("reviews.jsonl")
    assert q["detail"].endswith("z-test.jsonl:1")


def test_ids_that_hold_pii_are_replaced_by_ids_from_the_inputs(tmp_path):
    rows = review_rows(40)
    rows[0]["uid"], rows[1]["uid"] = "ann@example.com", "bob@example.com"
    root = project_files(tmp_path / "p", rows)
    out = run_prep(root)
    ids = [json.loads(line)["id"] for s in ("train", "val", "test")
           for line in (out / "prepared" / f"{s}.jsonl").read_text().splitlines()]  # fmt: skip
    assert len(ids) == len(set(ids)) == 40
    assert not any("@" in i or "EMAIL" in i for i in ids)
    assert sum(i.startswith("h") and len(i) == 13 for i in ids) == 2


def test_a_run_that_crashes_midway_leaves_the_old_outputs_and_no_temporaries(tmp_path, monkeypatch):
    root = project_files(tmp_path / "p", [*review_rows(40), {"uid": "bad"}])
    out = run_prep(root)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    write_jsonl(root / "data" / "raw" / "more.jsonl", [*review_rows(50, seed=9)[40:], "{"])
    monkeypatch.setattr(prep_stage, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_prep(root)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written, nothing mixed
    assert not [p for p in out.rglob(".*")]  # no temporary left behind


# --- property-based: any bytes, any JSON ----------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
# Rows near the reviews task's shape, so parsing gets past the first checks.
ROWS = st.fixed_dictionaries(
    {"uid": st.text(max_size=6) | st.integers(), "review_text": st.text(max_size=40) | JSON,
     "topic": st.sampled_from(["price", "misc", ""]) | JSON, "sentiment": st.sampled_from(["neutral"])},
    optional={"summary": st.text(max_size=20) | JSON, "split": JSON},
)  # fmt: skip
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@PROPERTY
@given(content=st.binary(max_size=300), name=st.sampled_from(
    ["a.jsonl", "a.csv", "a.tsv", "a.parquet", "a.jsonl.gz", "a.csv.gz"]))  # fmt: skip
def test_any_bytes_give_rows_or_rejections_never_an_exception(tmp_path, content, name):
    path = tmp_path / name
    for data in (content, gzip.compress(content)):
        path.write_bytes(data)
        try:
            got = list(read_rows(path, name))
        except NotDataError:
            continue  # the whole file is listed as not read, with its reason
        for where, obj, raw in got:
            assert where.startswith(f"{name}:") and isinstance(raw, str)
            assert isinstance(obj, dict | Rejection)
            json.dumps(obj if isinstance(obj, dict) else obj.raw, default=str).encode("utf-8")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = project_files(tmp_path_factory.mktemp("h"), [])
    params = load_params(root / "params.yaml")
    return root, Task.from_params(params.task), params.prep


@PROPERTY
@given(rows=st.lists(ROWS | JSON, max_size=12))
def test_any_json_rows_are_each_kept_or_quarantined(reviews, rows):
    root, task, prep_params = reviews
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            item = parse_row(f"f:{i + 1}", row, "", task, prep_params)
            assert isinstance(item, Rejection) or set(item.fields) == {f.name for f in task.fields}
    raw = root / "data" / "raw"
    (raw / "reviews.jsonl").write_text(
        "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows), encoding="utf-8"
    )
    try:
        result = prep_stage.prep(task, prep_params, raw)
    except prep_stage.PrepError as err:
        assert "no rows to prepare" in str(err) and not rows
        return
    with result:
        rejected = list(result.rejected())
        assert result.rows_in == len(rows) == result.rows_kept + len(rejected)
        assert {r.reason for r in rejected} <= set(REASONS)
