"""params.yaml loads into typed, frozen config; every mistake names the file and key; the
task is a declaration of fields checked on load."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmops.params import ParamsError, load_params
from llmops.params import main as params_main
from tests.synthetic import PARAMS


def write_params(tmp_path: Path, edit) -> Path:
    data = copy.deepcopy(PARAMS)
    edit(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_params_load_typed_and_frozen(params):
    assert params.prep.val_fraction == pytest.approx(0.1)
    assert params.task.outputs["sentiment"].values == ("negative", "neutral", "positive")
    assert params.task.outputs["sentiment"].ordered is True
    assert params.task.outputs["topic"].ordered is False  # a default, left out of the file
    assert params.task.inputs["text"].max_chars == 400
    assert params.task.outputs["summary"].values is None
    assert list(params.task.outputs) == ["topic", "sentiment", "summary"]  # declared order
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.prep.seed = 1  # type: ignore[misc]


def test_the_repository_params_file_loads(repo):
    # Whatever task the project declares, its params file must be valid.
    params_main([str(repo / "params.yaml")])


def test_wrong_type_message_names_file_key_expected_and_value(tmp_path):
    path = write_params(tmp_path, lambda d: d["prep"].update(val_fraction="0.1x"))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == (
        f'{path}: prep.val_fraction: expected a float in (0, 0.5), got "0.1x"'
    )


def outputs(d) -> dict:
    return d["task"]["outputs"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["prep"].update(val_fraction=0.5), "prep.val_fraction: expected a float in (0, 0.5), got 0.5"),
        (lambda d: d["prep"].update(seed=True), "prep.seed: expected an integer >= 0, got true"),
        (lambda d: d["prep"].update(seed=1.5), "prep.seed: expected an integer >= 0, got 1.5"),
        (lambda d: d["prep"].update(unicode_form="NFD"), 'prep.unicode_form: expected one of "NFC", "NFKC", got "NFD"'),
        (lambda d: d["prep"].update(redact=["EMAIL", "SSN"]), 'prep.redact[1]: expected one of "EMAIL", "PHONE", "CARD", got "SSN"'),
        (lambda d: d["prep"].update(redact="EMAIL"), 'prep.redact: expected a list of values from: "EMAIL", "PHONE", "CARD", got "EMAIL"'),
        (lambda d: d["prep"].update(pin_files={"holdout": ["a.csv"]}), 'prep.pin_files key: expected one of "train", "val", "test", got "holdout"'),
        (lambda d: d["prep"].update(columns={"text": ""}), 'prep.columns.text: expected a non-empty string, got ""'),
        (lambda d: d["task"].update(outputs={}), "task.outputs: expected a non-empty mapping"),
        (lambda d: outputs(d)["topic"].update(values=[]), "task.outputs.topic.values: expected a non-empty list of non-empty strings, without duplicates, got []"),
        (lambda d: outputs(d)["topic"].update(values=["a", "a"]), "task.outputs.topic.values: expected a non-empty list"),
        (lambda d: outputs(d)["topic"].update(values=["a", ""]), 'task.outputs.topic.values[1]: expected a non-empty string, got ""'),
        (lambda d: outputs(d)["topic"].update(values=["only"]), "task.outputs.topic: a label field needs `values`: a list of 2 or more labels"),
        (lambda d: outputs(d)["topic"].pop("values"), "task.outputs.topic: a label field needs `values`"),
        (lambda d: outputs(d)["summary"].update(values=["a", "b"]), "task.outputs.summary: a text field takes no `values` or `ordered`"),
        (lambda d: outputs(d)["topic"].update(kind="class"), 'task.outputs.topic.kind: expected one of "label", "text", got "class"'),
        (lambda d: outputs(d)["topic"].update(colour=1), "task.outputs.topic.colour: unknown key"),
        (lambda d: outputs(d).update(id={"kind": "text"}), "task: field name 'id' is reserved (id, source, split)"),
        (lambda d: outputs(d).update({"two words": {"kind": "text"}}), "task: field name 'two words': expected letters, digits and _"),
        (lambda d: outputs(d).update(text={"kind": "text"}), "task: ['text'] declared as both input and output"),
        (lambda d: d["task"]["inputs"].update(topic_values={"kind": "text"}), "task: field name 'topic_values' clashes with a label field's values"),
        (lambda d: d.update(prep=[1]), "prep: expected a mapping of keys, got [1]"),
        (lambda d: d["prep"].pop("seed"), "prep.seed: missing; expected an integer >= 0"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "prep.val_fractoin: unknown key; expected one of the known keys: columns, id_column"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "(did you mean 'val_fraction'?)"),
        (lambda d: d.update(trian={}), "trian: unknown key"),
        (lambda d: d["gate"].update(min={"topic_accuracy": "high"}), 'gate.min.topic_accuracy: expected a float, got "high"'),
        (lambda d: d["serve"].update(name="My Model"), "serve: name 'My Model': expected lowercase letters, digits, - _ ."),
        (lambda d: d["serve"].update(api_key_env="my-key"), "serve: api_key_env 'my-key': expected A-Z, 0-9 and _"),
        (lambda d: d["serve"].update(max_batch_size=1), "serve.max_batch_size: expected an integer in [2, 1024], got 1"),
        (lambda d: d["serve"].update(max_tokens=10), "serve.max_tokens (10) is below decoding.max_new_tokens (48)"),
        (lambda d: d["serve"].pop("max_queue"), "serve.max_queue: missing"),
    ],
)  # fmt: skip
def test_invalid_params_fail_with_key_and_expectation(tmp_path, edit, message):
    path = write_params(tmp_path, edit)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_int_accepted_where_float_expected(tmp_path):
    path = write_params(tmp_path, lambda d: d["prep"].update(max_rejected_fraction=1))
    loaded = load_params(path).prep.max_rejected_fraction
    assert loaded == 1.0 and isinstance(loaded, float)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("prep: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match=r"nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_reports_ok_and_errors(tmp_path, capsys):
    path = write_params(tmp_path, lambda d: None)
    params_main([str(path)])
    out = capsys.readouterr().out
    assert "ok (task, prep, base, train, decoding, eval, gate, report, serve)" in out
    path = write_params(tmp_path, lambda d: d["prep"].update(seed=-1))
    with pytest.raises(SystemExit) as exit_:
        params_main([str(path)])
    assert "prep.seed: expected an integer >= 0, got -1" in str(exit_.value.code)


def test_duplicate_keys_are_an_error_not_a_silent_override(tmp_path):
    text = write_params(tmp_path, lambda d: None).read_text()
    text = text.replace("  seed: 7\n", "  seed: 7\n  seed: 8\n")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML: duplicate key 'seed'"):
        load_params(path)


def test_yaml_merge_keys_work_and_odd_keys_fail_cleanly(tmp_path):
    text = write_params(tmp_path, lambda d: None).read_text()
    merged = text.replace("task:\n", "task: &task\n", 1) + "x: {<<: *task}\n"
    path = tmp_path / "params.yaml"
    path.write_text(merged)
    with pytest.raises(ParamsError, match=r"x: unknown key"):  # merged fine, then rejected
        load_params(path)
    path.write_text(text + "[a, b]: 1\n")
    with pytest.raises(ParamsError, match=r"not valid YAML: a key must be a plain value"):
        load_params(path)


def test_params_module_is_a_leaf():
    # params.py imports no other module of the library: everything builds on it.
    code = (
        "import sys, llmops.params\n"
        "mods = sorted(m for m in sys.modules if m.startswith('llmops.') and m != 'llmops.params')\n"
        "assert not mods, mods\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
