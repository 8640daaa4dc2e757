"""The prep benchmark runs both sides on the tests' own data and reports what it timed."""

from __future__ import annotations

import json

from benchmarks import bench_prep

from tests.synthetic import project_files, review_rows

KINDS = ["EMAIL", "PHONE", "CARD", "IBAN", "SSN"]


def test_bench_prep_times_prep_with_and_without_redaction(tmp_path):
    rows = review_rows(60)
    rows[0]["review_text"] += " Mail ann@example.com, IBAN GB82 WEST 1234 5698 7654 32."
    root = project_files(tmp_path / "p", rows, {"prep": {"redact": KINDS}})
    out = tmp_path / "prep.json"
    bench_prep.main(["--params", str(root / "params.yaml"), "--raw", str(root / "data" / "raw"),
                     "--out", str(out), "--repeats", "2"])  # fmt: skip
    found = json.loads(out.read_text())
    assert found["rows_in"] == 60 and found["repeats"] == 2 and found["kinds"] == KINDS
    assert found["redactions"] == {"EMAIL": 1, "IBAN": 1}
    assert found["seconds_with_redaction"] > 0 and found["seconds_without_redaction"] > 0
