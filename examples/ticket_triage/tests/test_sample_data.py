"""The sample data generator is deterministic, sized as promised and holds out phrasings."""

from __future__ import annotations

import json
import string

from examples.ticket_triage.generate import generate
from examples.ticket_triage.templates import CATEGORIES, HELD_OUT_TEMPLATES, PRIORITIES


def rows(folder) -> list[dict]:
    found = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                row = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(row, dict) and isinstance(row.get("message"), str):
                found.append(row)
    return found


def test_committed_raw_data_is_what_the_generator_writes(sample, repo):
    out, planted = sample
    committed = sorted(p.name for p in (repo / "data" / "raw").iterdir())
    assert committed == sorted(planted.files)
    for name in planted.files:
        assert (out / name).read_bytes() == (repo / "data" / "raw" / name).read_bytes(), name


def test_same_seed_same_bytes_other_seed_other_bytes(sample, tmp_path, params):
    out, planted = sample
    limit = params.task.inputs["message"].max_chars
    again = generate(tmp_path / "again", limit)
    other = generate(tmp_path / "other", limit, seed=99)
    assert again == planted
    name = planted.files[0]
    assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes()
    assert other.clean_rows == planted.clean_rows


def test_size_and_planted_defects(sample):
    out, planted = sample
    lines = sum(len((out / n).read_bytes().splitlines()) for n in planted.files)
    assert lines == planted.clean_rows + sum(planted.dirty.values()) >= 3000
    assert sum((out / n).stat().st_size for n in planted.files) < 3_000_000
    assert all(n >= 10 for n in planted.dirty.values()), planted.dirty
    assert all(planted.redactions[k] >= 50 for k in ("EMAIL", "PHONE", "CARD"))
    assert 0.1 < planted.test_rows / planted.clean_rows < 0.25


def _literals(template: str) -> list[str]:
    parts = [lit.strip(" .,?!:").lower() for lit, *_ in string.Formatter().parse(template)]
    return [p for p in parts if len(p) >= 25]


def test_test_rows_use_phrasings_never_seen_in_training(sample):
    out, _ = sample
    held_out = [lit for ts in HELD_OUT_TEMPLATES.values() for t in ts for lit in _literals(t)]
    train = [r["message"].lower() for r in rows(out) if "split" not in r]
    test = [r["message"].lower() for r in rows(out) if r.get("split") == "test"]
    assert not [m for m in train if any(lit in m for lit in held_out)]
    # Typos and dropped punctuation hide a few; most test rows show their held-out phrasing.
    shown = sum(any(lit in m for lit in held_out) for m in test)
    assert shown / len(test) > 0.7


def test_labels_cover_every_category_and_priority_in_test(sample, params):
    out, _ = sample
    test = [r for r in rows(out) if r.get("split") == "test"]
    pairs = {(r["category"], r["priority"]) for r in test}
    outputs = params.task.outputs
    assert len(pairs) == len(outputs["category"].values) * len(outputs["priority"].values)


def test_generator_labels_are_the_task_labels(params):
    # The generator stands in for your export system; params.yaml says what the task accepts.
    outputs = params.task.outputs
    assert (outputs["category"].values, outputs["priority"].values) == (CATEGORIES, PRIORITIES)
