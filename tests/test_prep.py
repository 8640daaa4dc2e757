"""The prep stage on the sample data and on bad input: every row accounted for."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from llmops.records import REASONS
from llmops.redact import KINDS, redact_raw
from llmops.stages.prep import main as prep_main
from llmops.stages.prep import prep
from tests.conftest import ticket, write_raw

# A wider net than the redactor's own patterns: any email, any run of 9+ digits with
# the usual separators and brackets.
PII = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\(?\d[\d ().\-/]{7,}\d")


def run(tmp_path: Path, raw: Path, params: Path | None = None) -> Path:
    out = tmp_path / "out"
    argv = ["--raw", str(raw), "--out", str(out / "prepared"), "--quarantine", str(out / "q")]
    argv += ["--report", str(out / "report"), "--metrics", str(out / "metrics.json")]
    prep_main(argv + (["--params", str(params)] if params else []))
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def planted(sample):
    # The committed data/raw is this output (test_sample_data checks the bytes).
    return sample[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, repo, planted, params):
    raw = repo / "data" / "raw"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    out = run(tmp_path_factory.mktemp("prep"), raw, repo / "params.yaml")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    assert before == after, "prep must never modify data/raw"
    return out


def test_every_planted_defect_is_quarantined_with_its_reason(prepared, planted):
    metrics = json.loads((prepared / "metrics.json").read_text())
    assert metrics["rows_in"] == planted.clean_rows + sum(planted.dirty.values())
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_rejected"]
    assert metrics["rows_kept"] == planted.clean_rows
    assert metrics["rejected"] == {r: planted.dirty.get(r, 0) for r in REASONS}
    assert metrics["redactions"] == planted.redactions
    assert metrics["split"]["test"] == planted.test_rows
    assert sum(metrics["split"].values()) == planted.clean_rows


def test_outputs_add_up_and_point_back_to_raw_lines(prepared, repo, planted):
    splits = {n: read_jsonl(prepared / "prepared" / f"{n}.jsonl") for n in ("train", "val", "test")}
    quarantine = read_jsonl(prepared / "q" / "rejected.jsonl")
    assert sum(map(len, splits.values())) + len(quarantine) == planted.clean_rows + sum(
        planted.dirty.values()
    )
    raw_lines = {}
    for q in quarantine:
        assert q["reason"] in REASONS and q["detail"], q
        lines = raw_lines.setdefault(q["source"], Path(q["source"]).read_bytes().splitlines())
        line = lines[q["line"] - 1]
        if q["reason"] in ("duplicate", "near_duplicate"):  # raw is the cleaned row
            assert json.loads(q["raw"])["id"] == json.loads(line)["id"]
        else:  # raw is the line as read, redacted
            assert q["raw"] == redact_raw(line.decode("utf-8", "backslashreplace"), KINDS)
    seen = set()
    for row in (r for rows in splits.values() for r in rows):
        assert set(row) == {"id", "message", "category", "priority", "reply", "source"}
        assert row["message"] == row["message"].strip() and "  " not in row["message"]
        key = row["message"].casefold()
        assert key not in seen
        seen.add(key)
    val = {r["category"] for r in splits["val"]}
    assert len(val) == 10  # stratified: every category has validation rows


def test_no_pii_is_stored(prepared):
    stored = [*(prepared / "prepared").iterdir(), prepared / "q" / "rejected.jsonl"]
    for path in [*stored, prepared / "report" / "data_report.md"]:
        text = path.read_text(encoding="utf-8")
        # 9+ digit runs that are not PII: none in the sample data but dates inside logs
        leaks = [m for m in PII.findall(text) if not re.fullmatch(r"[\d\- :.]+", m) or len(m) > 12]
        assert not leaks, (path, leaks[:5])
    assert "<EMAIL>" in (prepared / "prepared" / "train.jsonl").read_text()
    quarantine = (prepared / "q" / "rejected.jsonl").read_text()
    assert "<PHONE>" in quarantine and "<CARD>" in quarantine  # dirty rows carry PII too


def test_report_and_charts(prepared, planted):
    report = (prepared / "report" / "data_report.md").read_text()
    assert f"quarantined **{sum(planted.dirty.values())}**" in report
    assert f"| EMAIL | {planted.redactions['EMAIL']} |" in report
    assert f"| near_duplicate | {planted.dirty['near_duplicate']} |" in report
    for chart in ("label_balance.png", "message_length.png"):
        assert (prepared / "report" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](label_balance.png)" in report


def test_same_input_gives_same_outputs(tmp_path, repo):
    raw = tmp_path / "raw"
    write_raw(raw, [ticket(id=f"T{i}", message=f"Order ORD-10000{i} is late") for i in range(30)])
    first, second = run(tmp_path / "a", raw), run(tmp_path / "b", raw)
    for rel in (
        "prepared/train.jsonl",
        "prepared/val.jsonl",
        "metrics.json",
        "report/label_balance.png",
    ):
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_empty_raw_folder_fails_clearly(tmp_path, monkeypatch, repo):
    monkeypatch.chdir(repo)
    (tmp_path / "raw").mkdir()
    with pytest.raises(SystemExit, match=r"prep: .*raw: no rows to prepare \(no files\)"):
        run(tmp_path, tmp_path / "raw")
    with pytest.raises(SystemExit, match=r"prep: .*absent: raw data folder not found"):
        run(tmp_path, tmp_path / "absent")


def test_only_malformed_lines_fail_and_are_kept(tmp_path, monkeypatch, repo):
    monkeypatch.chdir(repo)
    raw = tmp_path / "raw"
    write_raw(raw, ['{"id": "T1", "message": ', "not json", "{'single': 'quotes'}"])
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, raw)
    assert "no usable rows: all 3 rows were rejected (malformed_json=3)" in str(exit_.value)
    assert "rejected.jsonl" in str(exit_.value)
    quarantined = read_jsonl(tmp_path / "out" / "q" / "rejected.jsonl")
    assert [(q["line"], q["reason"]) for q in quarantined] == [
        (i, "malformed_json") for i in (1, 2, 3)
    ]


def test_too_many_rejections_fail_after_writing_the_quarantine(tmp_path, monkeypatch, repo):
    monkeypatch.chdir(repo)
    raw = tmp_path / "raw"
    good = [ticket(id=f"T{i}", message=f"Order ORD-20000{i} never came") for i in range(8)]
    write_raw(raw, [*good, ticket(category="misc"), ticket(priority=None)])
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, raw)
    message = str(exit_.value)
    assert "2 of 10 rows rejected (20.0%), more than prep.max_rejected_fraction=10.0%" in message
    assert "unknown_label=1" in message and "missing_field=1" in message
    assert len(read_jsonl(tmp_path / "out" / "q" / "rejected.jsonl")) == 2
    assert (
        len(read_jsonl(tmp_path / "out" / "prepared" / "train.jsonl"))
        + len(read_jsonl(tmp_path / "out" / "prepared" / "val.jsonl"))
        == 8
    )


def test_params_typo_fails_before_reading_data(tmp_path, repo):
    text = (repo / "params.yaml").read_text().replace("val_fraction:", "val_fractoin:")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(
        SystemExit,
        match=r"params.yaml: prep.val_fractoin: unknown key.*did you mean 'val_fraction'",
    ):
        run(tmp_path, repo / "data" / "raw", tmp_path / "params.yaml")
    assert not (tmp_path / "out").exists()


def test_prep_function_returns_counts(repo, params, planted):
    result = prep(params.task, params.prep, repo / "data" / "raw")
    assert result.rows_kept == planted.clean_rows
    assert result.rows_in == result.rows_kept + len(result.rejected)
