"""The prep stage on the worked example's committed data: it quarantines exactly what the
generator planted, reason by reason, and stores no PII."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from llmops.data.records import REASONS
from llmops.data.redact import KINDS, redact_raw
from llmops.stages.prep import main as prep_main

PII = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\(?\d[\d ().\-/]{7,}\d")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def planted(sample):
    # The committed data/raw is this output (test_sample_data checks the bytes).
    return sample[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, repo):
    raw = repo / "data" / "raw"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    out = tmp_path_factory.mktemp("prep")
    argv = ["--params", str(repo / "params.yaml"), "--raw", str(raw)]
    argv += ["--out", str(out / "prepared"), "--quarantine", str(out / "q")]
    argv += ["--report", str(out / "report"), "--metrics", str(out / "metrics.json")]
    prep_main(argv)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    assert before == after, "prep must never modify data/raw"
    return out


def test_every_planted_defect_is_quarantined_with_its_reason(prepared, planted):
    metrics = json.loads((prepared / "metrics.json").read_text())
    assert metrics["rows_in"] == planted.clean_rows + sum(planted.dirty.values())
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_rejected"]
    assert metrics["rows_kept"] == planted.clean_rows
    assert metrics["rejected"] == {r: planted.dirty.get(r, 0) for r in REASONS}
    assert metrics["redactions"] == dict.fromkeys(KINDS, 0) | planted.redactions
    assert metrics["split"]["test"] == planted.test_rows


def test_outputs_point_back_to_raw_lines(prepared, repo):
    quarantine = read_jsonl(prepared / "q" / "rejected.jsonl")
    raw_lines = {}
    for q in quarantine:
        assert q["reason"] in REASONS and q["detail"], q
        lines = raw_lines.setdefault(q["source"], Path(q["source"]).read_bytes().splitlines())
        line = lines[q["line"] - 1]
        if q["reason"] in ("duplicate", "near_duplicate"):  # raw is the cleaned row
            assert json.loads(q["raw"])["id"] == json.loads(line)["id"]
        elif q["raw"]:  # raw is the line as read, redacted
            assert q["raw"] == redact_raw(line.decode("utf-8", "backslashreplace"), KINDS)
        else:  # a line that could not be parsed as a row is not copied on
            assert q["reason"] in ("invalid_utf8", "malformed_json", "not_an_object"), q
    val = {r["category"] for r in read_jsonl(prepared / "prepared" / "val.jsonl")}
    assert len(val) == 10  # stratified by the first label field: every category in val


def test_no_pii_is_stored(prepared):
    stored = [*(prepared / "prepared").iterdir(), prepared / "q" / "rejected.jsonl"]
    for path in [*stored, prepared / "report" / "data_report.md"]:
        text = path.read_text(encoding="utf-8")
        leaks = [m for m in PII.findall(text) if not re.fullmatch(r"[\d\- :.]+", m) or len(m) > 12]
        assert not leaks, (path, leaks[:5])
    quarantine = (prepared / "q" / "rejected.jsonl").read_text()
    assert "<PHONE>" in quarantine and "<CARD>" in quarantine  # dirty rows carry PII too
