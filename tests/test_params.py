"""params.yaml loads into typed, frozen config; every mistake names the file and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from llmops.params import ParamsError, load_params
from llmops.params import main as params_main


def write_params(tmp_path: Path, repo: Path, edit) -> Path:
    data = yaml.safe_load((repo / "params.yaml").read_text())
    edit(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_repo_params_load_typed_and_frozen(params):
    assert params.prep.val_fraction == pytest.approx(0.1)
    assert isinstance(params.prep.max_message_chars, int)
    assert params.task.priorities == ("low", "medium", "high", "urgent")
    assert len(params.task.categories) >= 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.prep.seed = 1  # type: ignore[misc]


def test_wrong_type_message_names_file_key_expected_and_value(tmp_path, repo):
    path = write_params(tmp_path, repo, lambda d: d["prep"].update(val_fraction="0.1x"))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == (
        f'{path}: prep.val_fraction: expected a float in (0, 0.5), got "0.1x"'
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["prep"].update(val_fraction=0.5), "prep.val_fraction: expected a float in (0, 0.5), got 0.5"),
        (lambda d: d["prep"].update(seed=True), "prep.seed: expected an integer >= 0, got true"),
        (lambda d: d["prep"].update(seed=1.5), "prep.seed: expected an integer >= 0, got 1.5"),
        (lambda d: d["prep"].update(max_message_chars=8), "prep.max_message_chars: expected an integer in [16, 100000], got 8"),
        (lambda d: d["prep"].update(unicode_form="NFD"), 'prep.unicode_form: expected one of "NFC", "NFKC", got "NFD"'),
        (lambda d: d["prep"].update(redact=["EMAIL", "SSN"]), 'prep.redact[1]: expected one of "EMAIL", "PHONE", "CARD", got "SSN"'),
        (lambda d: d["prep"].update(redact="EMAIL"), 'prep.redact: expected a list of values from: "EMAIL", "PHONE", "CARD", got "EMAIL"'),
        (lambda d: d["task"].update(categories=[]), "task.categories: expected a non-empty list of non-empty strings, without duplicates, got []"),
        (lambda d: d["task"].update(priorities=["low", "low"]), "task.priorities: expected a non-empty list"),
        (lambda d: d["task"].update(priorities=["low", ""]), 'task.priorities[1]: expected a non-empty string, got ""'),
        (lambda d: d.update(prep=[1]), "prep: expected a mapping of keys, got [1]"),
        (lambda d: d["prep"].pop("seed"), "prep.seed: missing; expected an integer >= 0"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "prep.val_fractoin: unknown key; expected one of the known keys: seed, val_fraction"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "(did you mean 'val_fraction'?)"),
        (lambda d: d.update(trian={}), "trian: unknown key"),
    ],
)  # fmt: skip
def test_invalid_params_fail_with_key_and_expectation(tmp_path, repo, edit, message):
    path = write_params(tmp_path, repo, edit)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_int_accepted_where_float_expected(tmp_path, repo):
    path = write_params(tmp_path, repo, lambda d: d["prep"].update(max_rejected_fraction=1))
    loaded = load_params(path).prep.max_rejected_fraction
    assert loaded == 1.0 and isinstance(loaded, float)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("prep: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match=r"nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_reports_ok_and_errors(tmp_path, repo, capsys):
    params_main([str(repo / "params.yaml")])
    assert "ok (task, prep, base, train, eval)" in capsys.readouterr().out
    path = write_params(tmp_path, repo, lambda d: d["prep"].update(seed=-1))
    with pytest.raises(SystemExit) as exit_:
        params_main([str(path)])
    assert "prep.seed: expected an integer >= 0, got -1" in str(exit_.value.code)


def test_duplicate_keys_are_an_error_not_a_silent_override(tmp_path, repo):
    text = (repo / "params.yaml").read_text().replace("  seed: 42\n", "  seed: 42\n  seed: 7\n")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML: duplicate key 'seed'"):
        load_params(path)


def test_yaml_merge_keys_work_and_odd_keys_fail_cleanly(tmp_path, repo):
    text = (repo / "params.yaml").read_text()
    merged = text.replace("task:\n", "task: &task\n", 1) + "x: {<<: *task}\n"
    path = tmp_path / "params.yaml"
    path.write_text(merged)
    with pytest.raises(ParamsError, match=r"x: unknown key"):  # merged fine, then rejected
        load_params(path)
    path.write_text(text + "[a, b]: 1\n")
    with pytest.raises(ParamsError, match=r"not valid YAML: a key must be a plain value"):
        load_params(path)
