"""Quality gates: floors, regressions against a baseline, skipped (not passed) without one,
and the command's exit status."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from llmops.config.params import GateParams
from llmops.evaluate.baseline import _git, check_ref, resolve
from llmops.evaluate.gate import check, main
from llmops.evaluate.metrics import EVAL_SHAPE, InputError
from tests.synthetic import write_params

GATES = GateParams(
    min={"json_valid": 0.98, "topic_accuracy": 0.8, "test_loss": 1.0},
    max_drop={"topic_accuracy": 0.02, "test_loss": 0.1, "sentiment_rank_error": 0.05},
    confidence=0.95,
)
NOW = {"json_valid": 0.99, "topic_accuracy": 0.85, "test_loss": 0.5, "sentiment_rank_error": 0.3}


def test_floors_and_drops_pass_and_fail_by_hand(task):
    base = {"topic_accuracy": 0.86, "test_loss": 0.35, "sentiment_rank_error": 0.2}
    results = check(task, GATES, NOW, base)
    status = {r.gate: r.status for r in results}
    assert status == {
        "json_valid >= 0.98": "pass",
        "topic_accuracy >= 0.8": "pass",
        "test_loss <= 1": "pass",  # lower is better for a loss
        "topic_accuracy drop <= 0.02 vs baseline": "pass",  # 0.85 >= 0.86 - 0.02
        "test_loss drop <= 0.1 vs baseline": "fail",  # 0.5 > 0.35 + 0.1
        "sentiment_rank_error drop <= 0.05 vs baseline": "fail",  # 0.3 > 0.2 + 0.05
    }
    drop = next(r for r in results if r.gate.startswith("topic_accuracy drop"))
    assert drop.threshold == pytest.approx(0.84)


def test_relative_gates_without_baseline_are_skipped_not_passed(task):
    results = check(task, GATES, NOW, None)
    assert [r.status for r in results if "drop" in r.gate] == ["skipped"] * 3


def test_a_missing_metric_fails_its_floor(task):
    results = check(task, GATES, {"json_valid": 1.0}, None)
    assert {r.gate: r.status for r in results}["topic_accuracy >= 0.8"] == "fail"


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)  # fmt: skip


def records(right: int | set[int], n: int = 200) -> str:
    """A per-example record whose first `right` examples (or those in the set) are right."""
    lines = ["id,reference,json_valid,topic_accuracy,topic_answer,topic_reference"]
    for i in range(n):
        ok = i in right if isinstance(right, set) else i < right
        lines.append(f"R{i},ref{i},1,{int(ok)},{'price' if ok else 'quality'},price")
    return "\n".join(lines) + "\n"


def project_at_main(tmp_path, monkeypatch, accuracy: float, right: int):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    metrics = tmp_path / "metrics" / "eval.json"
    metrics.write_text(json.dumps({"tuned": {"json_valid": 1.0, "topic_accuracy": accuracy}}))
    (tmp_path / "metrics" / "eval_examples.csv").write_text(records(right))
    gates = {"min": {"json_valid": 0.98}, "max_drop": {"topic_accuracy": 0.02}}
    write_params(tmp_path / "params.yaml", {"gate": gates})
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "main")
    return metrics


ARGS = ["--metrics", "metrics/eval.json", "--examples", "metrics/eval_examples.csv"]


def now(tmp_path, accuracy: float, right: int | set[int]) -> None:
    (tmp_path / "metrics" / "eval.json").write_text(
        json.dumps({"tuned": {"json_valid": 1.0, "topic_accuracy": accuracy}})
    )
    (tmp_path / "metrics" / "eval_examples.csv").write_text(records(right))


def test_command_passes_against_itself_and_fails_a_real_drop_naming_it(
    tmp_path, monkeypatch, capsys
):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    main(ARGS)  # equal to main: passes
    assert "all 2 checked gates pass" in capsys.readouterr().out
    now(tmp_path, 0.6, 120)  # 60 of 200 examples went wrong: a real regression
    with pytest.raises(SystemExit) as failed:
        main(ARGS)
    message = str(failed.value)
    assert "1 gate(s) failed: topic_accuracy drop <= 0.02 vs baseline" in message
    assert "Δ -0.3000 [" in message and "p(worse) 0.0005" in message and "n=200" in message
    table = capsys.readouterr().out
    assert "| `topic_accuracy drop <= 0.02 vs baseline` | 0.6000 | 0.8800 | ❌ fail" in table


def test_a_drop_past_max_drop_that_is_noise_passes(tmp_path, monkeypatch, capsys):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    # 10 examples went wrong and 5 others right: 0.025 down, more than max_drop, but such
    # mixed flips are what noise looks like (p about 0.15).
    now(tmp_path, 0.875, set(range(10, 180)) | set(range(190, 195)))
    main(ARGS)
    out = capsys.readouterr().out
    assert "| 0.8750 | 0.8800 | ✅ pass |" in out and "within noise" in out


def test_without_a_baseline_record_the_threshold_alone_decides(tmp_path, monkeypatch, capsys):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    git(tmp_path, "rm", "-q", "metrics/eval_examples.csv")
    git(tmp_path, "commit", "-qm", "no record")
    now(tmp_path, 0.875, 175)
    with pytest.raises(SystemExit, match="1 gate\\(s\\) failed: topic_accuracy drop"):
        main(ARGS)
    assert "threshold only (no per-example scores to test)" in capsys.readouterr().out


def test_a_first_run_skips_regression_gates_and_an_unknown_ref_stops(tmp_path, monkeypatch, capsys):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    git(tmp_path, "rm", "-q", "--cached", "metrics/eval.json", "metrics/eval_examples.csv")
    git(tmp_path, "commit", "-qm", "nothing evaluated yet")
    main(ARGS)  # the ref is there, its metrics are not: a first run
    out = capsys.readouterr().out
    assert "⏭️ skipped" in out
    assert "no metrics/eval.json committed at main: regression gates skipped" in out
    with pytest.raises(SystemExit) as stopped:
        main([*ARGS, "--baseline", "mian"])
    assert str(stopped.value) == "gate: baseline ref 'mian' not found (fetch it or set BASELINE)"


def test_the_base_branch_as_ci_fetches_it_is_found_as_origin(tmp_path, monkeypatch, capsys):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    git(tmp_path, "checkout", "-q", "-b", "change")
    git(tmp_path, "update-ref", "refs/remotes/origin/base", "main")
    git(tmp_path, "branch", "-qD", "main")
    main([*ARGS, "--baseline", "base"])  # origin/base
    assert "all 2 checked gates pass" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("committed", "problem"),
    [
        ("eval.json", '{"tuned": {"json_valid": 1.0, "topic_accuracy": '),
        ("eval.json", "[]"),
        ("eval.json", '{"tuned": {"json_valid": NaN}}'),
        ("eval_examples.csv", "id,reference,topic_accuracy\nR0,ref0,yes\n"),
        ("eval_examples.csv", "id,reference,topic_accuracy\nR0,ref0\n"),
        ("eval_examples.csv", "no,header\n1,2\n"),
    ],
)
def test_a_baseline_that_is_there_but_unreadable_stops_the_gate(
    tmp_path, monkeypatch, committed, problem
):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    good = (tmp_path / "metrics" / committed).read_text()
    (tmp_path / "metrics" / committed).write_text(problem)
    git(tmp_path, "commit", "-qam", "corrupt")
    (tmp_path / "metrics" / committed).write_text(good)
    with pytest.raises(SystemExit) as stopped:
        main(ARGS)
    message = str(stopped.value)
    assert message.startswith(f"gate: metrics/{committed} at main: ") and "\n" not in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "metrics/eval.json not found (run the pipeline: make repro)"),
        ("", "metrics/eval.json: not valid JSON (Expecting value at line 1); expected " + EVAL_SHAPE),
        ("{", "metrics/eval.json: not valid JSON (Expecting property name enclosed in double quotes at line 1); expected " + EVAL_SHAPE),
        ("[1, 2]", "metrics/eval.json: expected " + EVAL_SHAPE + ", got a list"),
        ("null", "metrics/eval.json: expected " + EVAL_SHAPE + ", got null"),
        ('{"base": {}}', "metrics/eval.json: expected " + EVAL_SHAPE + ", got no 'tuned' object"),
        ('{"tuned": [0.9]}', "metrics/eval.json: expected " + EVAL_SHAPE + ", got no 'tuned' object"),
        ('{"tuned": {}, "base": 3}', "metrics/eval.json: base: expected an object of metric names to numbers, got a number"),
        ('{"tuned": {"json_valid": "high"}}', 'metrics/eval.json: tuned.json_valid: expected a number, got "high"'),
        ('{"tuned": {"json_valid": NaN}}', "metrics/eval.json: tuned.json_valid: expected a number, got NaN"),
        ('{"tuned": {"json_valid": true}}', "metrics/eval.json: tuned.json_valid: expected a number, got true"),
        (b"\xff\xfe{", "metrics/eval.json: not UTF-8 (byte 0)"),
    ],
)  # fmt: skip
def test_a_malformed_metrics_file_is_one_line_naming_it(tmp_path, monkeypatch, content, message):
    metrics = project_at_main(tmp_path, monkeypatch, 0.9, 180)
    if content is None:
        metrics.unlink()
    elif isinstance(content, bytes):
        metrics.write_bytes(content)
    else:
        metrics.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        main(ARGS)
    assert str(stopped.value) == f"gate: {message}"


def test_a_malformed_record_in_this_change_is_named(tmp_path, monkeypatch):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    (tmp_path / "metrics" / "eval_examples.csv").write_text("id,reference,json_valid\nR0,r,\n")
    with pytest.raises(SystemExit) as stopped:
        main(ARGS)
    assert str(stopped.value) == (
        "gate: metrics/eval_examples.csv: row 1: json_valid: expected a number, got ''"
    )


@pytest.mark.parametrize(
    "ref",
    ["x;echo INJECTED", "$(touch /tmp/pwned)", "--output=/tmp/pwned", "-p", "-main~1", "a..b",
     "", "a\nb", "a\x00b", "main~1\n", "main:metrics/eval.json", "main~1:metrics/eval.json",
     "HEAD@{1}", "main@{upstream}", "@{-1}", "main^{commit}", "main^!", "main~-1", "a~1b",
     "~1", "^", "main~1..main", "main~\u0663"],
)  # fmt: skip
def test_a_ref_that_is_no_git_name_is_refused_before_git_sees_it(tmp_path, monkeypatch, ref):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    with pytest.raises(InputError) as err:
        check_ref(ref)
    assert str(err.value) == (
        f"baseline ref {ref!r} is not a valid git ref name or commit id, optionally followed "
        "by ~N or ^N (git check-ref-format); set BASELINE to a branch, tag or commit, e.g. main"
    )
    with pytest.raises(SystemExit, match=r"^gate: baseline ref .* is not a valid git ref name"):
        main([*ARGS, f"--baseline={ref}"])  # as the Makefile passes it


@pytest.mark.parametrize(
    "ref",
    ["main", "origin/main", "v1.2", "feature/x-1", "HEAD", "0a1b2c3", "HEAD~1", "main^",
     "main~2^2", "main~", "main^^", "origin/main~10", "0a1b2c3^2", "v1.2~1"],
)  # fmt: skip
def test_refs_git_accepts_pass(ref):
    assert check_ref(ref) == ref


def test_an_ancestor_of_a_branch_is_a_baseline(tmp_path, monkeypatch, capsys):
    project_at_main(tmp_path, monkeypatch, 0.9, 180)
    now(tmp_path, 0.6, 120)
    git(tmp_path, "commit", "-qam", "worse")
    main(ARGS)  # main is this worse commit itself
    assert "all 2 checked gates pass" in capsys.readouterr().out
    for ref in ("HEAD~1", "main^", "main~1^0"):
        with pytest.raises(SystemExit, match="1 gate\\(s\\) failed: topic_accuracy drop"):
            main([*ARGS, "--baseline", ref])


def test_outside_a_git_repository_the_ref_cannot_be_found(tmp_path, monkeypatch):
    # Whatever holds the temporary folder (a checkout, say), git must not search up into it.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(InputError, match=r"^baseline ref 'main': .* is not a git repository$"):
        resolve("main", cwd=tmp_path)


def test_git_runs_in_the_c_locale(tmp_path, monkeypatch):
    # A stand-in git that prints its locale: a real git speaks another language only where
    # its translations are installed, and a test machine may have none.
    fake = tmp_path / "git"
    fake.write_text('#!/bin/sh\necho "$LC_ALL $LANG"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert _git("version").stdout == b"C C\n"


def test_a_gate_naming_a_metric_the_task_lacks_stops_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"gate": {"min": {"priority_accuracy": 0.5}}})
    with pytest.raises(SystemExit, match=r"gate: .*gate.min.priority_accuracy: no such metric"):
        main(ARGS)


def test_a_metric_the_baseline_record_lacks_is_left_to_the_threshold(task):
    from llmops.evaluate.gate import comparisons, paired_records

    old = records(180).replace(",topic_accuracy,", ",other,")  # an older record's column
    pairs, why = paired_records(old, records(120))
    assert why == ""
    found = comparisons(task, pairs, ["topic_accuracy", "json_valid"], 0.95, {})
    assert list(found) == ["json_valid"]
    assert paired_records(None, records(120)) == (
        None, "No per-example record (metrics/eval_examples.csv) at the baseline."
    )  # fmt: skip
