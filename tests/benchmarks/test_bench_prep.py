"""The prep benchmark runs both sides on the tests' own data and reports what it timed."""

from __future__ import annotations

import json

from benchmarks import bench_prep
from tests.synthetic import project_files, review_rows

KINDS = ["EMAIL", "PHONE", "CARD", "IBAN", "SSN"]


def test_bench_prep_times_redaction_and_measures_memory_on_generated_rows(tmp_path):
    rows = review_rows(60)
    rows[0]["review_text"] += " Mail ann@example.com, IBAN GB82 WEST 1234 5698 7654 32."
    root = project_files(tmp_path / "p", rows, {"prep": {"redact": KINDS}})
    out = tmp_path / "prep.json"
    bench_prep.main(["--params", str(root / "params.yaml"), "--raw", str(root / "data" / "raw"),
                     "--out", str(out), "--repeats", "2", "--rows", "300", "1200"])  # fmt: skip
    found = json.loads(out.read_text())
    assert found["rows_in"] == 60 and found["repeats"] == 2 and found["kinds"] == KINDS
    assert found["redactions"] == {"EMAIL": 1, "IBAN": 1}
    assert found["seconds_with_redaction"] > 0 and found["seconds_without_redaction"] > 0
    memory = found["memory"]
    assert memory["rows_ratio"] == 4 and set(memory["runs"]) == {"300", "1200"}
    for n, run in memory["runs"].items():  # every generated row is read and kept
        assert run["rows_in"] == run["rows_kept"] == int(n) and run["peak_mb"] > 10
    assert 0.5 < memory["peak_ratio"] < 1.5  # a few hundred rows: the same process either way
