"""`make init`: a project folder with a worked example becomes the user's project from a CSV
(or JSONL, Parquet): the task declared from the data, a starter prompt, the column mapping,
the test file pinned, the example and its pipeline state removed, comments kept; bad
arguments change nothing. The end-to-end run (`make init`, `make repro`, the unit suite in a
fresh copy) is at the bottom."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmops.config.params import load_params
from llmops.config.prompts import load_template, render_prompt
from llmops.config.task import Task
from llmops.project import adopt as init_module
from tests.synthetic import (
    INTENTS,
    intent_rows,
    many_label_rows,
    write_csv,
    write_params,
    write_split_params,
)


@pytest.fixture
def root(tmp_path) -> Path:
    """A project laid out like a fresh clone: params (with comments), a worked example that
    owns a data file and a prompt, and its committed pipeline state."""
    root = tmp_path / "project"
    root.mkdir()
    params = write_params(root / "params.yaml")
    write_split_params(root, yaml.safe_load(params.read_text()))  # as in the template
    text = params.read_text().replace("prep:\n", "# prep: how raw files become splits.\nprep:\n")
    params.write_text(text.replace("gate:\n", "gate:\n  # floors for the example\n"))
    declared = (root / "task.yaml").read_text()
    (root / "task.yaml").write_text(declared.replace("prep:\n", "# the data's shape\nprep:\n"))
    (root / "examples" / "demo").mkdir(parents=True)
    (root / "examples" / "demo" / "example.yaml").write_text(
        "owns:\n  - data/raw/demo.jsonl\n  - prompts/review.jinja\n"
    )
    (root / "examples" / "__init__.py").write_text("")
    for rel in ("data/raw/demo.jsonl", "prompts/review.jinja", "dvc.lock", "metrics/eval.json",
                "reports/eval/metrics.png", "data/raw/keep-me.csv"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    return root


def data(tmp_path: Path, rows: list[dict], name: str = "train.csv") -> Path:
    return write_csv(tmp_path / "incoming" / name, rows)


def test_a_csv_becomes_the_declared_task(root, tmp_path):
    rows = [{"Utterance Text": r["utterance"], "intent": r["intent"]} for r in intent_rows(200)]
    test = [{"Utterance Text": r["utterance"], "intent": r["intent"]}
            for r in intent_rows(30, seed=2, held_out=True)]  # fmt: skip
    columns, removed, _ = init_module.init(
        root, data(tmp_path, rows), data(tmp_path, test, "test.csv"),
        "Utterance Text", "intent", "",
    )  # fmt: skip
    params = load_params(root / "params.yaml")
    assert params.task.prompt == "prompts/task.jinja"
    assert list(params.task.inputs) == ["Utterance_Text"]
    label = params.task.outputs["intent"]
    assert label.kind == "label" and label.values == tuple(sorted(INTENTS))
    assert params.prep.columns == {"Utterance_Text": "Utterance Text"}
    assert params.prep.id_column is None and params.prep.split_column is None
    assert params.prep.pin_files == {"test": ("test.csv",)} and params.prep.test_fraction == 0.0
    assert params.gate.min == {"json_valid": 0.9}
    assert params.gate.max_drop == {"intent_accuracy": 0.05}
    assert (root / "data" / "raw" / "train.csv").read_bytes() == (
        tmp_path / "incoming" / "train.csv"
    ).read_bytes()
    assert (root / "data" / "raw" / "test.csv").exists()
    # The example, the files it owned and the pipeline state are gone; the rest stays.
    for gone in ("examples", "data/raw/demo.jsonl", "prompts/review.jinja", "dvc.lock",
                 "metrics", "reports/eval"):  # fmt: skip
        assert not (root / gone).exists(), gone
    assert (root / "data" / "raw" / "keep-me.csv").exists()
    assert "examples/demo/" in removed and "dvc.lock" in removed
    # The declaration is in task.yaml, the knobs in params.yaml; comments are kept, the one
    # trailing a replaced section included.
    text = (root / "params.yaml").read_text()
    assert "# prep: how raw files become splits." in text
    assert not [line for line in text.splitlines() if line != line.rstrip()]
    declared = (root / "task.yaml").read_text()
    assert "# the data's shape" in declared
    assert "task" not in yaml.safe_load(text) and "columns" not in yaml.safe_load(text)["prep"]
    assert yaml.safe_load(declared)["prep"]["columns"] == {"Utterance_Text": "Utterance Text"}
    assert [c.counts for c in columns if c.kind == "label"] == [(23,) * 10]  # train + test


def test_init_moves_a_declaration_params_yaml_still_holds_into_task_yaml(tmp_path):
    # A project made before task.yaml: its task and data shape are in params.yaml.
    root = tmp_path / "old"
    root.mkdir()
    write_params(root / "params.yaml")
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(60)]
    init_module.init(root, data(tmp_path, rows), None, "", "", "")
    knobs = yaml.safe_load((root / "params.yaml").read_text())
    declared = yaml.safe_load((root / "task.yaml").read_text())
    assert "task" not in knobs and not {"columns", "id_column", "pin_files"} & set(knobs["prep"])
    assert list(declared["task"]["outputs"]) == ["label"] and "split_column" in declared["prep"]
    assert load_params(root / "params.yaml").task.outputs["label"].values == tuple(sorted(INTENTS))


def test_init_runs_again_on_its_own_result(root, tmp_path):
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(60)]
    init_module.init(root, data(tmp_path, rows), None, "", "", "")
    again = [{"question": f"q {i}?", "kind": "a" if i % 2 else "b"} for i in range(40)]
    init_module.init(root, data(tmp_path, again, "second.csv"), None, "question", "kind", "")
    params = load_params(root / "params.yaml")
    assert list(params.task.inputs) == ["question"] and list(params.task.outputs) == ["kind"]
    assert "# prep: how raw files become splits." in (root / "params.yaml").read_text()


def test_the_starter_prompt_lists_few_labels_and_renders(root, tmp_path):
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(100)]
    init_module.init(root, data(tmp_path, rows), None, "", "", "")  # text/label by name
    params = load_params(root / "params.yaml")
    task = Task.from_params(params.task)
    template = load_template(root / params.task.prompt, task.variables())
    assert template.variables == ("text", "label_values")
    prompt = render_prompt(template, task.prompt_variables({"text": "lost my card"}))
    assert prompt.text.endswith("Text: lost my card\nAnswer:\n")
    assert "|".join(sorted(INTENTS)) in prompt.text
    assert params.prep.test_fraction == 0.1 and params.prep.pin_files == {}


def test_many_labels_are_learned_not_listed_in_the_prompt(root, tmp_path):
    init_module.init(root, data(tmp_path, many_label_rows(2000)), None, "", "", "")
    params = load_params(root / "params.yaml")
    assert len(params.task.outputs["label"].values) == 80
    template = load_template(root / params.task.prompt)
    assert template.variables == ("text",)  # 80 labels would make every prompt long


def test_a_free_text_output_and_ids_from_the_data(root, tmp_path):
    rows = [{"id": f"Q{i}", "question": f"question {i}?", "topic": "a" if i % 2 else "b",
             "answer": f"answer number {i}"} for i in range(50)]  # fmt: skip
    init_module.init(root, data(tmp_path, rows), None, "question", "topic", "answer")
    params = load_params(root / "params.yaml")
    assert list(params.task.outputs) == ["topic", "answer"]
    assert params.task.outputs["answer"].kind == "text"
    assert params.task.outputs["answer"].max_chars >= len("answer number 49")
    assert params.prep.id_column == "id"
    assert params.gate.max_drop == {"topic_accuracy": 0.05, "answer_rouge_l": 0.05}


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        ([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}], ("", "intent", ""),
         "label column(s) ['intent'] not in the data; it has ['text', 'label']"),
        ([{"words": "a", "label": "x"}, {"words": "b", "label": "y"}], ("", "", ""),
         "name the input column: INPUT=<column>; the data has ['words', 'label']"),
        ([{"text": "a", "label": "x"}, {"text": "b", "label": "x"}], ("", "", ""),
         "column 'label' has 1 distinct label(s); need 2+"),
        ([{"text": "a", "label": "x"}], ("text", "text", ""),
         "a column is named twice among INPUT, LABELS and TEXTS"),
    ],
)  # fmt: skip
def test_bad_arguments_are_explained_and_change_nothing(root, tmp_path, rows, args, message):
    before = (root / "params.yaml").read_text()
    with pytest.raises(init_module.InitError, match=re.escape(message)):
        init_module.init(root, data(tmp_path, rows), None, *args)
    assert (root / "params.yaml").read_text() == before
    assert (root / "examples" / "demo").exists() and (root / "dvc.lock").exists()


def test_numeric_labels_and_unknown_files_are_refused_clearly(root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"text": "a", "label": 1}, {"text": "b", "label": 2}]), path
    )
    with pytest.raises(
        init_module.InitError, match=r"column 'label' holds values that are not text"
    ):
        init_module.init(root, path, None, "", "", "")
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(init_module.InitError, match=r"d.xlsx: expected one of .jsonl"):
        init_module.init(root, tmp_path / "d.xlsx", None, "", "", "")


def test_the_users_files_are_never_lost(root, tmp_path):
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(50)]
    owned = write_csv(root / "data" / "raw" / "demo.csv", rows)
    (root / "examples" / "demo" / "example.yaml").write_text("owns:\n  - data/raw/demo.csv\n")
    with pytest.raises(init_module.InitError, match="belongs to the worked example"):
        init_module.init(root, owned, None, "", "", "")
    mine = data(tmp_path, rows)
    with pytest.raises(init_module.InitError, match="DATA and TEST are the same file"):
        init_module.init(root, mine, mine, "", "", "")
    write_csv(root / "data" / "raw" / "train.csv", rows[:5])  # another file of that name
    with pytest.raises(init_module.InitError, match=r"data/raw/train.csv exists and is another"):
        init_module.init(root, mine, None, "", "", "")
    assert owned.exists() and (root / "examples" / "demo").exists()


def test_a_file_already_in_data_raw_is_used_where_it_is(root, tmp_path):
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(60)]
    inside = write_csv(root / "data" / "raw" / "mine" / "all.csv", rows)
    other = data(tmp_path, rows[:20], "test [2024].csv")
    _, _, others = init_module.init(root, inside, other, "", "", "")
    params = load_params(root / "params.yaml")
    assert params.prep.pin_files == {"test": ("test [[]2024].csv",)}  # a glob, escaped
    assert (root / "data" / "raw" / "test [2024].csv").exists()
    assert others == ["keep-me.csv"]  # listed: prep reads it too


def test_labels_yaml_would_misread_are_quoted(root, tmp_path):
    rows = [
        {"text": f"t{i}", "label": ["yes", "no", "on", "null", "1e3"][i % 5]} for i in range(50)
    ]
    init_module.init(root, data(tmp_path, rows), None, "", "", "")
    values = load_params(root / "params.yaml").task.outputs["label"].values
    assert values == ("1e3", "no", "null", "on", "yes")


def test_odd_column_names_become_valid_fields_and_ids_and_splits_are_checked(root, tmp_path):
    rows = [{"id": f"i{i}", "Größe text": f"text {i}", "yes": "a" if i % 2 else "b",
             "split": "dev" if i == 3 else ""} for i in range(40)]  # fmt: skip
    test = [{"Größe text": f"held {i}", "yes": "a" if i % 2 else "b"} for i in range(10)]
    init_module.init(
        root, data(tmp_path, rows), data(tmp_path, test, "t.csv"), "Größe text", "yes", ""
    )
    params = load_params(root / "params.yaml")
    assert list(params.task.inputs) == ["Gr_e_text"]
    assert list(params.task.outputs) == ["yes_field"]  # `yes` alone reads as a boolean
    assert params.prep.columns == {"Gr_e_text": "Größe text", "yes_field": "yes"}
    assert params.prep.id_column is None  # the test file has no ids
    assert params.prep.split_column is None  # "dev" is not a split prep knows


def test_a_free_text_task_needs_no_label(root, tmp_path):
    rows = [{"question": f"q {i}?", "answer": f"a {i}"} for i in range(30)]
    init_module.init(root, data(tmp_path, rows), None, "question", "", "answer")
    params = load_params(root / "params.yaml")
    assert list(params.task.outputs) == ["answer"]
    assert params.gate.max_drop == {"answer_rouge_l": 0.05}


def test_an_invalid_result_names_the_projects_files(root, tmp_path, monkeypatch):
    from llmops.project import declaration

    rows = [{"text": f"t{i}", "label": "xy"[i % 2]} for i in range(20)]
    monkeypatch.setattr(declaration, "MAX_LENGTH", 10**6)  # past what base.tiny takes
    monkeypatch.setattr(declaration, "sizes", lambda *a: (10**6, 32))
    with pytest.raises(init_module.InitError) as err:
        init_module.init(root, data(tmp_path, rows), None, "", "", "")
    assert str(err.value).startswith("params.yaml: ") and "tmp" not in str(err.value)
    assert (root / "examples" / "demo").exists()


def test_command_line_without_data_says_how(capsys):
    with pytest.raises(SystemExit, match=r"init: give your data: make init DATA=path/to/train.csv"):
        init_module.main(["--data", ""])


# --- end to end: a fresh copy, make init, make repro, the unit suite ------------------------


@pytest.mark.e2e
def test_make_init_then_repro_and_the_unit_suite_pass(tmp_path, repo):
    from tests.e2e.test_pipeline_e2e import commit, copy_repo, make, sh

    copy = copy_repo(repo, tmp_path / "repo")
    # As in a fresh clone of the template: data/raw holds no data but the example's (which
    # init removes); a project's own data would be read alongside the generated files.
    shutil.rmtree(copy / "data" / "raw", ignore_errors=True)
    commit(copy, "fresh clone")
    rows = [{"text": r["utterance"], "label": r["intent"]} for r in intent_rows(300)]
    held = [{"text": r["utterance"], "label": r["intent"]}
            for r in intent_rows(40, seed=2, held_out=True)]  # fmt: skip
    train_csv = write_csv(tmp_path / "mine" / "train.csv", rows)
    test_csv = write_csv(tmp_path / "mine" / "test.csv", held)
    done = make(copy, "init", f"DATA={train_csv}", f"TEST={test_csv}")
    assert "10 labels: account_close (34), balance (34)" in done.stdout
    assert not (copy / "examples").exists()
    # Shrink the model so the run takes seconds, as a profile (make profile keeps params.yaml's
    # comments); nothing else is edited by hand.
    small = {"base": {"tiny": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
                               "block_length": 128, "batch_size": 16, "steps": 40}},
             "train": {"epochs": 100, "max_steps": 250, "batch_size": 8}}  # fmt: skip
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small))
    make(copy, "profile", f"PROFILE={tmp_path / 'small.yaml'}")
    make(copy, "repro")
    evaluated = json.loads((copy / "metrics" / "eval.json").read_text())["tuned"]
    assert "label_accuracy" in evaluated
    # So small a model may still write labels the task does not declare, which are no
    # answer (json_valid counts them out): the gate must judge the task's own metrics and
    # give the verdict they call for, whichever it is.
    gate = make(copy, "gate", check=False)
    assert f"| `json_valid >= 0.9` | {evaluated['json_valid']:.4f} |" in gate.stdout, gate.stdout
    assert "label_accuracy drop" in gate.stdout and "Traceback" not in gate.stderr
    assert (gate.returncode == 0) == (evaluated["json_valid"] >= 0.9), gate.stdout
    make(copy, "report")
    assert "label_accuracy" in (copy / "report.md").read_text()
    commit(copy, "my task")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(copy / "src")}
    # The unit suite on the user's project. The training and service modules are left out:
    # their fixtures are the tests' own synthetic project, built in a temporary folder from
    # tests/synthetic.py, so the project's files cannot change them (the outer run covers
    # them), and they take about half of its time.
    own = ["--ignore=tests/unit/stages/test_train.py", "--ignore=tests/unit/serve/test_api.py"]
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not e2e", "-p", "no:cacheprovider",
         *own],
        cwd=copy, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout
    assert not [f for f in sh(copy, "git", "ls-files").stdout.split() if f.startswith("examples/")]


@pytest.mark.parametrize("longest", [400, 1_500, 6_000])
def test_long_text_outputs_are_sized_everywhere_and_init_accepts_its_own_params(
    root, tmp_path, longest
):
    # A data-to-text set: a short structured input, several long human references each.
    rows = [
        {"mr": f"name[Place {i}], food[{food}]", "ref": f"Place {i} serves {food}. " * (1 + j)
         + "x" * (longest if (i, j) == (3, 2) else 20)}
        for i, food in enumerate(["Thai", "Greek", "Italian", "French"] * 10)
        for j in range(4)
    ]  # fmt: skip
    init_module.init(root, data(tmp_path, rows), None, "mr", "", "ref")
    params = load_params(root / "params.yaml")  # every cross-check of params passes
    widest = max(len(r["ref"]) for r in rows)
    assert params.task.outputs["ref"].max_chars >= widest
    assert params.decoding.max_new_tokens >= min(widest, 4096) // 4  # tokens, not chars
    assert params.serve.max_tokens >= params.decoding.max_new_tokens
    assert params.train.max_length <= params.base.tiny.context_length
    assert params.base.tiny.block_length <= params.base.tiny.context_length
