"""The report's pieces: untrusted text made safe for a PR comment, flipped examples judged by
the task's label fields from the per-example records, deltas with intervals coloured only
when significant, the classical floor, and the 65,536-character limit (example lists cut
first, and the report says so)."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest
import yaml

from llmops.evaluate import baseline
from llmops.evaluate.metrics import metric_names
from llmops.evaluate.predictions import (
    ModelAnswer,
    Prediction,
    example_rows,
    parse_examples,
    parse_predictions,
    write_examples,
    write_predictions,
)
from llmops.evaluate.stats import compare, pair
from llmops.report import pullrequest
from llmops.report.escape import escape as safe
from llmops.report.flips import flipped, right
from llmops.report.markdown import change_cell
from tests.synthetic import write_params, write_split_params

REFERENCE = {"topic": "price", "sentiment": "neutral", "summary": "ok"}


def record(i: int, ok: bool, text: str = "a review", sentiment_ok: bool = True) -> Prediction:
    parsed = dict(REFERENCE, topic="price" if ok else "quality")
    parsed["sentiment"] = "neutral" if sentiment_ok else "positive"
    scores = {"json_valid": 1.0, "topic_accuracy": float(ok), "topic_valid_label": 1.0,
              "sentiment_accuracy": float(sentiment_ok), "sentiment_valid_label": 1.0,
              "sentiment_rank_error": 0.0 if sentiment_ok else 1.0, "summary_rouge_l": 1.0,
              "exact_match": float(ok and sentiment_ok)}  # fmt: skip
    answer = ModelAnswer(json.dumps(parsed), parsed, True, "", scores, 9)
    return Prediction(f"R{i:06d}", {"text": text}, dict(REFERENCE), answer, answer)


def test_untrusted_text_cannot_ping_inject_html_or_break_the_table():
    # llmops.report.escape: tests/unit/report/test_escape.py renders hostile text with GitHub's renderer.
    text = safe("@team <img src=https://evil.example/x.png> a|b `code` ![x](https://t.co/p)\nn")
    assert text == (
        "\\@\u2060team \\<img src=https:\u2060//evil.example/x.png> a\\|b \\`code\\` "
        "!\\[x\\](https:\u2060//t.co/p) n"
    )
    assert safe("x" * 1000, limit=10) == "x" * 10 + "…"


def test_the_per_example_record_round_trips_and_holds_labels_not_text(task, tmp_path):
    rows = example_rows(task, [record(1, True), record(2, False)])
    assert list(rows[0]) == [
        "id", "reference", "json_valid", "topic_accuracy", "topic_valid_label",
        "sentiment_accuracy", "sentiment_valid_label", "sentiment_rank_error",
        "summary_rouge_l", "exact_match", "topic_answer", "topic_reference",
        "sentiment_answer", "sentiment_reference",
    ]  # fmt: skip
    assert rows[1]["topic_answer"] == "quality" and rows[1]["topic_accuracy"] == "0"
    write_examples(tmp_path / "e.csv", rows)
    assert parse_examples((tmp_path / "e.csv").read_text()) == rows
    assert "a review" not in (tmp_path / "e.csv").read_text()  # inputs stay in DVC


def test_flipped_pairs_examples_when_every_label_field_changes_verdict(task):
    main = example_rows(task, [record(1, True), record(2, False), record(3, True)])
    now = example_rows(task, [record(1, False), record(2, True), record(3, True)])
    fixed, broken = flipped(task, pair(main, now))
    assert [r["id"] for _, r in fixed] == ["R000002"]
    assert [r["id"] for _, r in broken] == ["R000001"]
    # Right means every label field right: a wrong sentiment alone makes it wrong.
    (half,) = example_rows(task, [record(6, True, sentiment_ok=False)])
    assert not right(task, half)


def test_predictions_round_trip_and_another_format_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    write_predictions(path, [record(1, True), record(2, False)])
    assert parse_predictions(path.read_text()) == [record(1, True), record(2, False)]
    old = '{"id": "T1", "message": "hi", "reference": {}, "tuned": {"output": "x"}}'
    try:
        parse_predictions(old)
    except ValueError as err:
        assert "line 1: not a prediction record" in str(err)
    else:
        raise AssertionError("an old-format record was accepted")


def test_only_a_change_whose_interval_excludes_zero_is_coloured(task):
    main = example_rows(task, [record(i, i % 5 != 0) for i in range(300)])
    noise = example_rows(task, [record(i, (i % 5 != 0) != (i in (1, 10))) for i in range(300)])
    drop = example_rows(task, [record(i, i % 2 == 0) for i in range(300)])
    small = compare("topic_accuracy", pair(main, noise), task, 0.95)
    large = compare("topic_accuracy", pair(main, drop), task, 0.95)
    assert change_cell(small, small.new, small.old).endswith("≈ noise")
    assert change_cell(large, large.new, large.old).endswith("🔴")
    assert change_cell(None, 0.5, 0.4) == "+0.1000 (untested)"


def inputs(root) -> pullrequest.Inputs:
    return pullrequest.Inputs(
        root / "metrics" / "eval.json", root / "metrics" / "eval_examples.csv",
        root / "metrics" / "train.json", root / "metrics" / "prep.json",
        root / "metrics" / "base.json", root / "data" / "eval" / "predictions.jsonl",
        root / "reports" / "train" / "t.csv", root / "models" / "adapter" / "training.json",
        root / "prompts",
    )  # fmt: skip


def test_a_huge_report_is_cut_to_the_comment_limit_and_says_so(tmp_path, monkeypatch, task):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"report": {"examples": 100}})
    metrics = dict.fromkeys(metric_names(task), 0.5)
    classical = {"topic_accuracy": 0.9, "topic_macro_f1": 0.88}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(
        json.dumps({"tuned": metrics, "base": metrics, "classical": classical})
    )
    long = "very long review text " * 40
    now = [record(i, i % 2 == 0, long) for i in range(400)]
    main = [record(i, i % 2 == 1, long) for i in range(400)]
    write_predictions(tmp_path / "data" / "eval" / "predictions.jsonl", now)
    write_examples(tmp_path / "metrics" / "eval_examples.csv", example_rows(task, now))
    main_rows = tmp_path / "main.csv"
    write_examples(main_rows, example_rows(task, main))
    # No git repository here: main's committed record comes from this stand-in for
    # `git show`, and its predictions are not in any DVC cache.
    monkeypatch.setattr(baseline, "at_ref", lambda ref, path, cwd=None: (
        main_rows.read_text() if path.endswith("eval_examples.csv") else None))  # fmt: skip
    monkeypatch.setattr(pullrequest, "baseline_outputs", lambda path, ref: None)
    text = pullrequest.build(tmp_path / "params.yaml", "main", inputs(tmp_path))
    assert len(text) < pullrequest.LIMIT
    assert "Lists cut to" in text and "to stay under GitHub's 65,536-character" in text
    assert "### Examples that flipped (topic and sentiment right vs not)" in text
    assert "**Wrong → right: 200**" in text and "**Right → wrong: 200**" in text
    assert "more not shown" in text and "its labels come from its record" in text
    assert '{"topic": "quality", "sentiment": "neutral"}' in text.replace("&#34;", '"')
    assert "| topic_accuracy | n/a | 0.5000 | ±0 [" in text  # paired: the same share right
    assert "| topic_accuracy | n/a | 0.5000 |" in text and "| 0.9000 | 0.5000 |" in text
    assert "| summary_rouge_l | n/a | 0.5000 | ±0 | — | 0.5000 |" in text
    assert "400 of 400 test examples paired with the baseline" in text


# --- make report's inputs: each bad one stops it with one line naming the file -------------

REPORT_ARGS = ["--out", "report.md", "--eval", "metrics/eval.json",
               "--examples", "metrics/eval_examples.csv", "--train", "metrics/train.json",
               "--prep", "metrics/prep.json", "--base", "metrics/base.json",
               "--predictions", "data/eval/predictions.jsonl",
               "--train-curve", "reports/train/t.csv",
               "--adapter", "models/adapter/training.json", "--prompts", "prompts"]  # fmt: skip


def committed_project(tmp_path, monkeypatch, task):
    """A project whose main commits its metrics, record and training curve."""
    monkeypatch.chdir(tmp_path)
    # No DVC repository here: main's generated texts are in no cache (report says so).
    monkeypatch.setattr(pullrequest, "baseline_outputs", lambda path, ref: None)
    write_params(tmp_path / "params.yaml")
    metrics = dict.fromkeys(metric_names(task), 0.5)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps({"tuned": metrics, "base": metrics}))
    now = [record(i, i % 2 == 0) for i in range(20)]
    write_predictions(tmp_path / "data" / "eval" / "predictions.jsonl", now)
    write_examples(tmp_path / "metrics" / "eval_examples.csv", example_rows(task, now))
    (tmp_path / "reports" / "train").mkdir(parents=True)
    (tmp_path / "reports" / "train" / "t.csv").write_text("step,loss\n1,2.5\n2,2.0\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "main"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       check=True, capture_output=True)  # fmt: skip


def commit_all(message: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                    "-qam", message], check=True, capture_output=True)  # fmt: skip


def test_make_report_writes_the_report_from_good_inputs(tmp_path, monkeypatch, task):
    committed_project(tmp_path, monkeypatch, task)
    pullrequest.main(REPORT_ARGS)
    assert "## Model report: this change vs `main`" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("data/eval/predictions.jsonl", None, "data/eval/predictions.jsonl not found (run the pipeline: make repro)"),
        ("data/eval/predictions.jsonl", "{}\n", "data/eval/predictions.jsonl: line 1: not a prediction record"),
        ("metrics/eval.json", None, "metrics/eval.json not found (run the pipeline: make repro)"),
        ("metrics/eval.json", "[]", "metrics/eval.json: expected a JSON object of models"),
        ("metrics/eval.json", '{"tuned": {"json_valid": null}}', "metrics/eval.json: tuned.json_valid: expected a number, got null"),
        ("metrics/train.json", "[1]", "metrics/train.json: expected a JSON object"),
        ("metrics/train.json", "{", "metrics/train.json: expected a JSON object"),
        ("metrics/prep.json", b"\xe9", "metrics/prep.json: not UTF-8 (byte 0)"),
        ("metrics/eval_examples.csv", "id,reference,json_valid\nR1,x\n", "metrics/eval_examples.csv: row 1: not as many cells"),
        ("reports/train/t.csv", "step,loss\nx,1\n", "reports/train/t.csv: not a step,loss curve"),
    ],
)  # fmt: skip
def test_a_missing_or_malformed_input_stops_the_report_naming_it(
    tmp_path, monkeypatch, task, path, content, message
):
    committed_project(tmp_path, monkeypatch, task)
    target = tmp_path / path
    if content is None:
        target.unlink()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SystemExit) as stopped:
        pullrequest.main(REPORT_ARGS)
    assert str(stopped.value).startswith(f"report: {message}")
    assert "\n" not in str(stopped.value) and not (tmp_path / "report.md").exists()


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("metrics/eval.json", "{", "metrics/eval.json at main: not valid JSON"),
        ("metrics/eval_examples.csv", "no,header\n1,2\n", "metrics/eval_examples.csv at main: not a per-example record"),
        ("reports/train/t.csv", "step,loss\n1\n", "reports/train/t.csv at main: not a step,loss curve"),
    ],
)  # fmt: skip
def test_a_baseline_file_that_is_there_but_unreadable_stops_the_report(
    tmp_path, monkeypatch, task, path, content, message
):
    committed_project(tmp_path, monkeypatch, task)
    good = (tmp_path / path).read_text()
    (tmp_path / path).write_text(content)
    commit_all("corrupt")
    (tmp_path / path).write_text(good)
    with pytest.raises(SystemExit) as stopped:
        pullrequest.main(REPORT_ARGS)
    assert str(stopped.value).startswith(f"report: {message}")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("mian", "baseline ref 'mian' not found (fetch it or set BASELINE)"),
        ("-x", "baseline ref '-x' is not a valid git ref name or commit id"),
        ("$(touch pwned)", "baseline ref '$(touch pwned)' is not a valid git ref name"),
    ],
)
def test_the_baseline_ref_is_checked_as_the_gate_checks_it(
    tmp_path, monkeypatch, task, ref, message
):
    committed_project(tmp_path, monkeypatch, task)
    with pytest.raises(SystemExit) as stopped:
        pullrequest.main([*REPORT_ARGS, f"--baseline={ref}"])
    assert str(stopped.value).startswith(f"report: {message}")
    assert not (tmp_path / "pwned").exists()


def test_the_task_moved_to_task_yaml_is_no_change_and_a_change_there_shows(
    tmp_path, monkeypatch, task
):
    committed_project(tmp_path, monkeypatch, task)  # main: the task inside params.yaml
    params = tmp_path / "params.yaml"
    write_split_params(tmp_path, yaml.safe_load(params.read_text()))
    pullrequest.main(REPORT_ARGS)
    assert "_No params changed._" in (tmp_path / "report.md").read_text()
    declared = tmp_path / "task.yaml"
    declared.write_text(declared.read_text().replace("max_chars: 400", "max_chars: 300"))
    pullrequest.main(REPORT_ARGS)
    assert "| task.inputs.text.max_chars | 400 | 300 |" in (tmp_path / "report.md").read_text()


def test_params_are_compared_as_load_params_reads_them(tmp_path, monkeypatch, task):
    committed_project(tmp_path, monkeypatch, task)
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.003\n  schedule",
                                                 "learning_rate: 3e-3\n  schedule"))  # fmt: skip
    pullrequest.main(REPORT_ARGS)
    assert "_No params changed._" in (tmp_path / "report.md").read_text()  # 3e-3 == 0.003
    params.write_text(params.read_text() + "prep: {}\n")  # a duplicate key, committed at main
    commit_all("broken params")
    params.write_text(params.read_text().removesuffix("prep: {}\n"))
    pullrequest.main(REPORT_ARGS)
    assert (
        "_Params not compared: params.yaml at the baseline: not valid YAML: duplicate key"
        in (tmp_path / "report.md").read_text()
    )


def test_a_flipped_example_shows_every_reference_of_its_text_field():
    from llmops.evaluate.predictions import ModelAnswer, Prediction
    from llmops.report.flips import reference_cell

    said = ModelAnswer("{}", {}, False, "", {}, 0)
    refs = ["A pub.", "A cheap pub.", "Pub, cheap.", "Riverside pub.", "Cheap riverside pub."]
    record = Prediction("r1", {"mr": "name[X]"}, {"text": "A pub."}, said, said, {"text": refs})
    cell = reference_cell(record)
    assert cell.startswith('{"text": "A pub."} · text, 5 references, also: "A cheap pub."')
    assert '"Riverside pub."' in cell and "Cheap riverside" not in cell and "(+1 more)" in cell
    alone = Prediction("r2", {"mr": "name[Y]"}, {"text": "B."}, said, said)
    assert reference_cell(alone) == '{"text": "B."}'


def test_the_report_names_the_text_scorers_for_a_task_with_text_fields(task):
    from llmops.config.task import Task
    from llmops.evaluate.predictions import ModelAnswer, Prediction
    from llmops.report.markdown import scorers_note

    said = ModelAnswer("{}", {}, False, "", {}, 0)
    several = Prediction("r1", {}, {"summary": "a"}, said, said, {"summary": ["a", "b"]})
    note = scorers_note(task, [several])
    assert "BLEU `nrefs:var|" in note and "chrF `nrefs:var|" in note and "rouge-score" in note
    assert "BLEU `nrefs:1|" in scorers_note(task, [dataclasses.replace(several, references={})])
    labels_only = Task(task.inputs, task.labels)
    assert scorers_note(labels_only) == ""


def test_the_data_section_counts_inputs_when_they_have_several_references():
    from llmops.report.markdown import data_changes

    rejected = {"duplicate": 3}
    now = {"split": {"train": 90, "test": 40}, "inputs": {"train": 12, "test": 5},
           "rejected": rejected, "rows_in": 133}  # fmt: skip
    main = {"split": {"train": 80, "test": 40}, "inputs": {"train": 10, "test": 5},
            "rejected": rejected, "rows_in": 123}  # fmt: skip
    table = data_changes(now, main)
    assert "| train split | 80 | 90 | +10 |" in table and "| train inputs | 10 | 12 | +2 |" in table
    single = {**now, "inputs": now["split"]}  # one row per input: no inputs rows
    assert "inputs" not in data_changes(single, main)


def test_the_report_says_plainly_when_a_label_is_within_noise_of_the_majority_class(task):
    from llmops.report.markdown import majority_note, metrics_table

    def results(accuracy: float, f1: float) -> dict:
        tuned = {"topic_accuracy": accuracy, "topic_macro_f1": f1,
                 "sentiment_accuracy": 0.95, "sentiment_macro_f1": 0.9}  # fmt: skip
        always = {"topic_accuracy": 0.63, "topic_macro_f1": 0.26,
                  "sentiment_accuracy": 0.4, "sentiment_macro_f1": 0.2}  # fmt: skip
        return {"tuned": tuned, "base": {}, "classical": {}, "majority": always}

    note = majority_note(task, results(0.66, 0.43), 500, 0.95)
    assert "**topic: no better than always answering the most frequent label.**" in note
    assert "Accuracy 0.660 against 0.630" in note and "interval is ±0.059" in note
    assert "sentiment" not in note  # 0.95 against 0.40: far above
    assert majority_note(task, results(0.80, 0.7), 500, 0.95) == ""
    worse = majority_note(task, results(0.20, 0.1), 500, 0.95)
    assert "**topic: worse than always answering the most frequent label.**" in worse
    table = metrics_table(task, results(0.66, 0.43), None, {})
    assert "| classical | majority class | base model |" in table
    assert "| topic_accuracy | n/a | 0.6600 | n/a | — | 0.6300 | n/a |" in table
    no_labels = metrics_table(task, {"tuned": {}, "base": {}}, None, {})
    assert "majority" not in no_labels


def test_recall_per_label_shows_a_collapse_onto_one_label(task):
    from llmops.evaluate.predictions import ModelAnswer, Prediction
    from llmops.report.markdown import recall_lines

    def record(i: int, truth: str, answer: str) -> Prediction:
        said = ModelAnswer("{}", {"topic": answer, "sentiment": "neutral"}, True, "", {}, 0)
        reference = {"topic": truth, "sentiment": "neutral", "summary": "s"}
        return Prediction(f"r{i}", {"text": "t"}, reference, said, said)

    records = [record(i, t, "price") for i, t in enumerate(["price"] * 6 + ["delivery"] * 3)]
    lines = recall_lines(task, records)
    assert "_topic recall per label (fine-tuned, lowest first): delivery 0.00 · price 1.00" in lines
    assert "1 of 2 labels never recalled" in lines
    assert "sentiment recall per label (fine-tuned, lowest first): neutral 1.00._" in lines


def test_the_cost_table_says_how_far_training_went_and_why_it_stopped(task):
    from llmops.report.markdown import cost

    now = {"tuned": {"latency_ms": 3.0, "generated_tokens_per_s": 100.0}}
    early = {"steps": 400, "epochs": 1.6, "stopped": "early_stop", "kept_step": 300}
    row = next(x for x in cost(early, None, now, None).splitlines() if "| training |" in x)
    assert "400 steps (1.6 epochs; early stop: validation loss stopped falling; weights of " \
        "step 300 kept (lowest validation loss))" in row  # fmt: skip
    budget = {"steps": 900, "epochs": 2.2, "stopped": "token_budget", "kept_step": 900}
    assert "(2.2 epochs; `train.token_budget` spent)," in cost(budget, None, now, None)
    assert "stop reason not recorded" in cost({"steps": 5}, None, now, None)  # older metrics
