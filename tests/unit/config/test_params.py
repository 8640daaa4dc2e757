"""params.yaml loads into typed, frozen config; every mistake names the file and key; the
task is a declaration of fields checked on load."""

from __future__ import annotations

import codecs
import copy
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.config.params import load_params
from llmops.config.params import main as params_main
from llmops.config.paramsfile import ParamsError, read_yaml
from tests.synthetic import PARAMS, write_split_params


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


# --- task.yaml: the declaration beside params.yaml ---------------------------------------


def split(tmp_path: Path, params: dict = PARAMS) -> Path:
    """params.yaml and task.yaml as the repository keeps them; the params path."""
    write_split_params(tmp_path, copy.deepcopy(params))
    return tmp_path / "params.yaml"


def test_the_task_declaration_in_task_yaml_loads_as_one_params(tmp_path):
    path = split(tmp_path)
    assert "task" not in yaml.safe_load(path.read_text())
    assert load_params(path) == load_params(write_params_file(tmp_path / "one" / "params.yaml"))


def write_params_file(path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p, t: p.update(task=t["task"]),
         "{p}: task: declared in {d} as well; keep it in {d} only"),
        (lambda p, t: p["prep"].update(columns={}),
         "{p}: prep.columns: declared in {d} as well; keep it in {d} only"),
        (lambda p, t: t["prep"].update(seed=3),
         "{d}: prep.seed: not part of the task declaration; expected some of columns, id_column, "
         "split_column, pin_files, label_case; other prep knobs live in params.yaml"),
        (lambda p, t: t.update(train={"lr": 1}),
         "{d}: train: not part of the task declaration; expected task or prep (its data keys); "
         "knobs live in params.yaml"),
        (lambda p, t: t["task"].update(prompt=3),
         "{d}: task.prompt: expected"),  # a bad value is named in the file that states it
        (lambda p, t: t["prep"].update(id_column=""),
         "{d}: prep.id_column: expected"),
    ],
)  # fmt: skip
def test_a_key_in_both_files_or_a_knob_in_task_yaml_is_named(tmp_path, edit, message):
    path = split(tmp_path)
    declared = tmp_path / "task.yaml"
    knobs, task = yaml.safe_load(path.read_text()), yaml.safe_load(declared.read_text())
    edit(knobs, task)
    path.write_text(yaml.safe_dump(knobs))
    declared.write_text(yaml.safe_dump(task))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value).startswith(message.format(p=path, d=declared)), str(err.value)


def test_wrong_type_message_names_file_key_expected_and_value(tmp_path):
    path = write_params(tmp_path, lambda d: d["prep"].update(val_fraction="0.1x"))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == (
        f'{path}: prep.val_fraction: expected a float in (0, 0.5), got "0.1x"'
    )


SEED_RANGE = "an integer in [0, 4294967295]"


def outputs(d) -> dict:
    return d["task"]["outputs"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["prep"].update(val_fraction=0.5), "prep.val_fraction: expected a float in (0, 0.5), got 0.5"),
        (lambda d: d["prep"].update(seed=True), "prep.seed: expected an integer in [0, 4294967295], got true"),
        (lambda d: d["prep"].update(seed=1.5), "prep.seed: expected an integer in [0, 4294967295], got 1.5"),
        (lambda d: d["prep"].update(unicode_form="NFD"), 'prep.unicode_form: expected one of "NFC", "NFKC", got "NFD"'),
        (lambda d: d["prep"].update(redact=["EMAIL", "NAME"]), 'prep.redact[1]: expected one of "EMAIL", "PHONE", "CARD"'),
        (lambda d: d["prep"].update(redact="EMAIL"), 'prep.redact: expected a list of values from: "EMAIL", "PHONE", "CARD"'),
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
        (lambda d: d["train"]["lora"].update(modules_to_save=["v_proj"]), "train.lora: ['v_proj'] is in both target_modules and modules_to_save"),
        (lambda d: d.update(prep=[1]), "prep: expected a mapping of keys, got [1]"),
        (lambda d: d["prep"].pop("seed"), "prep.seed: missing; expected an integer in [0, 4294967295]"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "prep.val_fractoin: unknown key; expected one of the known keys: columns, id_column"),
        (lambda d: d["prep"].update(val_fractoin=0.1), "(did you mean 'val_fraction'?)"),
        (lambda d: d.update(trian={}), "trian: unknown key"),
        (lambda d: d["gate"].update(min={"topic_accuracy": "high"}), 'gate.min.topic_accuracy: expected a float, got "high"'),
        (lambda d: d["serve"].update(name="My Model"), "serve: name 'My Model': expected lowercase letters, digits, - _ ."),
        (lambda d: d["serve"].update(api_key_env="my-key"), "serve: api_key_env 'my-key': expected A-Z, 0-9 and _"),
        (lambda d: d["serve"].update(max_batch_size=1), "serve.max_batch_size: expected an integer in [2, 1024], got 1"),
        (lambda d: d["serve"].update(max_tokens=10), "serve.max_tokens (10) is below decoding.max_new_tokens (48)"),
        (lambda d: d["serve"].pop("max_queue"), "serve.max_queue: missing"),
        (lambda d: d["serve"]["timeouts"].update(idle_s=3), "serve.timeouts: idle_s (3) must be below headers_s (3"),
        (lambda d: d["serve"]["logs"].update(retain_mb=10, file_mb=64), "serve.logs: retain_mb (10) is below file_mb (64)"),
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
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML: .* \(line 2, column 1\)$"):
        load_params(bad)
    with pytest.raises(ParamsError, match=r"nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_reports_ok_and_errors(tmp_path, capsys):
    path = write_params(tmp_path, lambda d: None)
    params_main([str(path)])
    out = capsys.readouterr().out
    assert (
        "ok (task, prep, base, train, decoding, eval, gate, report, serve, monitor, harvest)" in out
    )
    path = write_params(tmp_path, lambda d: d["prep"].update(seed=-1))
    with pytest.raises(SystemExit) as exit_:
        params_main([str(path)])
    assert "prep.seed: expected an integer in [0, 4294967295], got -1" in str(exit_.value.code)


def test_duplicate_keys_are_an_error_not_a_silent_override(tmp_path):
    text = write_params(tmp_path, lambda d: None).read_text()
    text = text.replace("  seed: 7\n", "  seed: 7\n  seed: 8\n")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML: duplicate key 'seed'"):
        load_params(path)


def test_an_override_of_a_merged_key_wins_and_merges_combine(tmp_path):
    # YAML's merge key: the mapping's own keys win over merged ones, an earlier merged
    # mapping over a later one; only the mapping's own keys must be unique.
    head, rest = write_params(tmp_path, lambda d: None).read_text().split("\ntrain:\n", 1)
    tail = rest.split("\ndecoding:", 1)[1]
    train = yaml.safe_dump(PARAMS["train"], default_flow_style=True, width=10_000).strip()
    path = tmp_path / "params.yaml"
    path.write_text(f"{head}\ntrain:\n  <<: {train}\n  learning_rate: 0.005\ndecoding:{tail}")
    loaded = load_params(path).train
    assert loaded.learning_rate == 0.005 and loaded.lora.r == PARAMS["train"]["lora"]["r"]
    # Long keys: PyYAML's own merge lets the later mapping win when keys are not interned.
    both = "a: &a {long_name: 1, x: 1}\nb: &b {long_name: 2, y: 2}\nc: {<<: [*a, *b], x: 3}\n"
    assert read_yaml(both, "t")["c"] == {"long_name": 1, "x": 3, "y": 2}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &a {x: 1}\nb:\n  <<: *a\n  y: 1\n  y: 2\n", "duplicate key 'y' (line 5, column 3)"),
        ("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n", "duplicate merge key '<<'; merge several mappings with one `<<: [*a, *b]`"),
        ("a: &a\n  <<: *a\n", "alias *a is inside the value it names (line 2, column 7)"),
        ("a: &a\n  <<: [*a]\n", "alias *a is inside the value it names (line 2, column 8)"),
        ("a:\n  <<: [1]\n", "`<<` merges a mapping or a list of them"),
    ],
)  # fmt: skip
def test_merge_mistakes_are_named(text, problem):
    with pytest.raises(ParamsError) as err:
        read_yaml(text, "params.yaml")
    assert str(err.value).startswith(f"params.yaml: not valid YAML: {problem}")


@pytest.mark.parametrize(
    ("text", "value"),
    [("3e-4", 3e-4), ("1e5", 1e5), ("-2E+3", -2000.0), (".5", 0.5), ("-.5", -0.5),
     ("+1.5e3", 1500.0), ("1.0e-5", 1e-5), ("2", 2), ("1_000", 1000),
     # YAML 1.2 ints and booleans, where YAML 1.1 (PyYAML) reads 8, a string, True or 90
     ("010", 10), ("0o10", 8), ("-0o10", -8), ("0x1f", 31), ("0b101", 5), ("08", 8),
     ("on", "on"), ("yes", "yes"), ("No", "No"), ("OFF", "OFF"), ("true", True),
     ("False", False), ("1:30", "1:30"), ("1:30.5", "1:30.5"), ("0o8", "0o8")],
)  # fmt: skip
def test_yaml_1_2_booleans_and_numbers_as_dvc_reads_them(text, value):
    found = read_yaml(f"x: {text}", "t")["x"]
    assert found == value and type(found) is type(value)
    assert found == dvc_reads(f"x: {text}")["x"]


def dvc_reads(text: str):
    """The data DVC reads from params YAML text (dvc.utils.serialize.parse_yaml)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)


def test_other_yaml_readers_keep_yaml_1_1():
    assert yaml.safe_load("{a: 3e-4, b: 010, c: 0o10, d: on, e: 1:30}") == {
        "a": "3e-4", "b": 8, "c": "0o10", "d": True, "e": 90,
    }  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789_+-.eExXoObB:nNaifFtTrRuUsSlLyY~")),
               min_size=1, max_size=8))  # fmt: skip
def test_any_plain_scalar_is_read_as_dvc_reads_it(text):
    try:
        dvc = dvc_reads(f"x: {text}")["x"]
    except Exception:  # ruamel raises many kinds; it is enough that both refuse
        with pytest.raises(ParamsError):
            read_yaml(f"x: {text}", "t")
        return
    ours = read_yaml(f"x: {text}", "t")["x"]
    assert type(ours) is type(dvc) and (ours == dvc or (ours != ours and dvc != dvc))  # NaN


@pytest.mark.parametrize("label", ["on", "yes", "No", "08", "0o10", "010", "3e-4", "1:30",
                                   "0b101", "1_000", "true", "null", "~", "2024-01-01"])  # fmt: skip
def test_labels_make_init_writes_are_read_back_as_strings_by_every_reader(label):
    from llmops.project.declaration import flow, scalar, yaml_tool

    out = io.StringIO()
    yaml_tool().dump({"values": flow([scalar(label)]), scalar(label): [scalar(label)]}, out)
    for data in (read_yaml(out.getvalue(), "t"), yaml.safe_load(out.getvalue())):
        assert data == {"values": [label], label: [label]}


def test_a_learning_rate_written_3e_4_loads(tmp_path):
    text = write_params(tmp_path, lambda d: None).read_text()
    path = tmp_path / "params.yaml"
    path.write_text(
        text.replace("  learning_rate: 0.003\n  schedule", "  learning_rate: 3e-4\n  schedule")
    )
    assert load_params(path).train.learning_rate == pytest.approx(3e-4)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_nan_and_infinity_are_refused_wherever_a_float_goes(tmp_path, value):
    text = write_params(tmp_path, lambda d: None).read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("    json_valid: 0.0\n", f"    json_valid: {value}\n"))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    shown = value.lower()
    assert str(err.value) == f"{path}: gate.min.json_valid: expected a finite float, got {shown}"
    path.write_text(text.replace("temperature: 1.0", f"temperature: {value}"))
    with pytest.raises(ParamsError, match=r"decoding.temperature: expected a finite float > 0"):
        load_params(path)


# Each seed goes to numpy and torch: numpy takes [0, 2**32 - 1]. Step counts past a
# billion and batch sizes past 65,536 are typos (2**64 overflows torch besides).
@pytest.mark.parametrize(
    ("section", "key", "bad", "expected"),
    [
        (("prep",), "seed", 2**32, SEED_RANGE),
        (("base", "tiny"), "seed", 2**64, SEED_RANGE),
        (("train",), "seed", 2**32, SEED_RANGE),
        (("decoding",), "seed", -1, SEED_RANGE),
        (("base", "tiny"), "steps", 10**9 + 1, "an integer in [1, 1000000000]"),
        (("base", "tiny"), "warmup_steps", 2**64, "an integer in [0, 1000000000]"),
        (("base", "tiny"), "batch_size", 65_537, "an integer in [1, 65536]"),
        (("train",), "warmup_steps", 10**10, "an integer in [0, 1000000000]"),
        (("train",), "epochs", 10**7, "an integer in [1, 1000000]"),
        (("train",), "max_steps", 2**63, "an integer in [1, 1000000000]"),
        (("train",), "batch_size", 10**6, "an integer in [1, 65536]"),
        (("train",), "grad_accum", 10**6, "an integer in [1, 65536]"),
        (("train",), "eval_every", 2**64, "an integer in [1, 1000000000]"),
        (("train",), "checkpoint_every", 0, "an integer in [1, 1000000000]"),
        (("train",), "log_every", 10**12, "an integer in [1, 1000000000]"),
        (("eval",), "batch_size", 2**20, "an integer in [1, 65536]"),
    ],
)  # fmt: skip
def test_out_of_range_integers_are_refused_naming_the_key(tmp_path, section, key, bad, expected):
    def edit(d):
        table = d
        for name in section:
            table = table[name]
        table[key] = bad

    path = write_params(tmp_path, edit)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    dotted = ".".join((*section, key))
    assert str(err.value) == f"{path}: {dotted}: expected {expected}, got {bad}"


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_every_seed_takes_the_ends_of_its_range(tmp_path, seed):
    def edit(d):
        for table in (d["prep"], d["base"]["tiny"], d["train"], d["decoding"]):
            table["seed"] = seed

    loaded = load_params(write_params(tmp_path, edit))
    assert {loaded.prep.seed, loaded.base.tiny.seed, loaded.train.seed, loaded.decoding.seed} == {
        seed
    }


def test_an_integer_too_large_for_a_float_is_refused(tmp_path):
    path = write_params(tmp_path, lambda d: d["gate"]["min"].update(json_valid=10**400))
    with pytest.raises(
        ParamsError, match=r"gate.min.json_valid: expected a finite float, got 1000"
    ):
        load_params(path)


def utf8_text(tmp_path) -> str:
    return write_params(tmp_path, lambda d: None).read_text()


@pytest.mark.parametrize(
    ("encode", "problem"),
    [
        (lambda t: ("# café\n" + t).encode("latin-1"), "not UTF-8 (byte 0xe9 at line 1, column 6); save the file as UTF-8"),
        (lambda t: t.encode("utf-16"), "is UTF-16; save it as UTF-8"),
        (lambda t: t.encode("utf-16-le"), "is UTF-16; save it as UTF-8"),
        (lambda t: t.encode("utf-16-be"), "is UTF-16; save it as UTF-8"),
        (lambda t: t.encode("utf-32"), "is UTF-32; save it as UTF-8"),
        (lambda t: t.replace("seed: 7", "seed: 7\x00").encode(), "not valid YAML: character #x0000 is not allowed"),
    ],
)  # fmt: skip
def test_a_file_in_another_encoding_is_named(tmp_path, encode, problem):
    path = tmp_path / "params.yaml"
    path.write_bytes(encode(utf8_text(tmp_path)))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value).startswith(f"{path}: {problem}")


def test_a_utf8_bom_just_works(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(codecs.BOM_UTF8 + utf8_text(tmp_path).encode())
    assert load_params(path).prep.seed == 7


def test_a_directory_or_an_unreadable_file_is_named(tmp_path, monkeypatch):
    with pytest.raises(ParamsError) as err:
        load_params(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory, expected a YAML file"
    path = write_params(tmp_path, lambda d: None)

    def denied(self):  # tests may run as root, which reads a file whatever its mode
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: cannot be read (Permission denied)"


@pytest.mark.parametrize(
    "text",
    ["x: 2024-13-01\n", "x: " + "1" * 5000 + "\n", "x: " + "[" * 2000, "x: !!bool maybe\n",
     "x: !!float abc\n", "x: !!binary 'not base64!'\n"],
)  # fmt: skip
def test_values_pyyaml_cannot_build_are_one_line_errors(text):
    with pytest.raises(ParamsError) as err:
        read_yaml(text, "params.yaml")
    assert str(err.value).startswith("params.yaml: not valid YAML: ")
    assert "\n" not in str(err.value)


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
    # params.py imports no other module of the library but its file reader, the typed
    # checking and the label normal form (llmops.config.textnorm): everything builds on it.
    code = (
        "import sys, llmops.config.params\n"
        "mods = sorted(m for m in sys.modules if m.startswith('llmops.'))\n"
        "assert mods == ['llmops.config', 'llmops.config.params', 'llmops.config.paramsfile', 'llmops.config.textcodec',"
        " 'llmops.config.textnorm', 'llmops.config.typedconfig'], mods\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- whatever the file holds, loading gives typed params or one ParamsError ------------------

VALID = yaml.safe_dump(PARAMS, sort_keys=False)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
YAML_ISH = st.text(alphabet=st.sampled_from(list(":-[]{}&*<!|>'\"#%@`,?.~ \n\tabxyz019eE+_=")))


def leaf_paths(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    for key, value in data.items():
        out += leaf_paths(value, (*prefix, key)) if isinstance(value, dict) else [(*prefix, key)]
    return out


def loads_or_names_the_problem(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_params(path)
    except ParamsError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err), str(err)


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_load_or_raise_params_error(tmp_path, data):
    loads_or_names_the_problem(tmp_path / "params.yaml", data)


@FUZZ
@given(
    at=st.integers(0, len(VALID)),
    cut=st.integers(0, 40),
    insert=YAML_ISH | st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
)
def test_a_valid_file_with_yaml_ish_text_spliced_in(tmp_path, at, cut, insert):
    text = VALID[:at] + insert + VALID[at + cut :]
    loads_or_names_the_problem(tmp_path / "params.yaml", text.encode())


@FUZZ
@given(path=st.sampled_from(leaf_paths(PARAMS)), value=JSON_VALUES)
def test_any_value_under_any_key(tmp_path, path, value):
    data = copy.deepcopy(PARAMS)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    loads_or_names_the_problem(tmp_path / "params.yaml", yaml.safe_dump(data).encode())
