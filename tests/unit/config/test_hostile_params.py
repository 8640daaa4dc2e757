"""Hostile params and data that reach DVC: alias bombs, values that hold themselves, file
names DVC cannot hash, and the preflight every DVC make target runs first."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

from llmops.config.params import load_params
from llmops.config.paramsfile import ParamsError, read_yaml
from llmops.config.typedconfig import _show
from llmops.project.profile import apply
from tests.synthetic import project_files, review_rows, write_params, write_split_params

LOLS = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'


def wide_bomb(levels: int = 9) -> str:
    """`levels` anchors, each a list of ten aliases of the last: 10**levels values."""
    value = f"&a0 {LOLS}"
    for n in range(1, levels):
        value = f"&a{n} [{value}, " + ", ".join([f"*a{n - 1}"] * 9) + "]"
    return value


def deep_bomb(levels: int = 60) -> str:
    """A chain of anchors, each a pair of aliases of the last: 2**levels values."""
    value = "&a0 [lol, lol]"
    for n in range(1, levels):
        value = f"&a{n} [{value}, *a{n - 1}]"
    return value


def with_seed(tmp_path: Path, value: str) -> Path:
    path = write_params(tmp_path / "params.yaml")
    text = path.read_text()
    assert text.count("  seed: 7\n") == 1
    path.write_text(text.replace("  seed: 7\n", f"  seed: {value}\n"))
    return path


@pytest.mark.parametrize("bomb", [wide_bomb(), deep_bomb()], ids=["wide", "deep"])
@pytest.mark.timeout(60)  # expanded, the bomb would take minutes and gigabytes
def test_an_alias_bomb_is_one_line_and_small(tmp_path, bomb):
    path = with_seed(tmp_path, bomb)
    tracemalloc.start()
    try:
        with pytest.raises(ParamsError) as err:
            load_params(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    line = 1 + path.read_text().split("  seed: ")[0].count("\n")  # where the bomb is
    assert re.fullmatch(
        rf"{re.escape(str(path))}: not valid YAML: more than 100,000 values once aliases are "
        rf"expanded; alias \*a\d+ repeats [\d,]+ of them \(line {line}, column \d+\)",
        message,
    ), message
    assert peak < 20_000_000, peak


def test_a_bomb_in_a_profile_is_refused_the_same_way(tmp_path):
    profile = tmp_path / "bomb.yaml"
    profile.write_text(f"train:\n  lora:\n    target_modules: {wide_bomb()}\n")
    params = write_params(tmp_path / "params.yaml")
    before = params.read_text()
    with pytest.raises(ParamsError, match=r"bomb.yaml: not valid YAML: more than 100,000"):
        apply(profile, params)
    assert params.read_text() == before


def test_a_value_that_holds_itself_is_refused():
    with pytest.raises(ParamsError, match=r"alias \*p is inside the value it names \(line 2"):
        read_yaml("prep: &p\n  seed: *p\n", "params.yaml")


def test_aliases_that_stay_small_still_work():
    text = "a: &a [1, {b: 2}]\nc: [*a, *a]\nd: {<<: {e: 3}, f: *a}\n"
    loaded = read_yaml(text, "params.yaml")
    assert loaded["c"] == [[1, {"b": 2}]] * 2 and loaded["d"] == {"e": 3, "f": [1, {"b": 2}]}


def test_show_of_a_huge_or_circular_value_is_short_and_quick():
    huge: list = ["lol"] * 10
    for _ in range(12):  # 10**13 strings, shared
        huge = [huge] * 10
    circular: list = []
    circular.append(circular)
    for value in (huge, circular, "x" * 10_000_000, {"k": huge}, 10**5000):
        shown = _show(value)  # 10**13 strings: it would never end if it walked them all
        assert len(shown) <= 201 and "\n" not in shown
    assert _show({"a": [1, None, True, 1.5]}) == '{"a": [1, null, true, 1.5]}'


# --- the preflight: what DVC reads, checked before it runs --------------------------------


def preflight(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "llmops.project.preflight", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path, repo) -> Path:
    root = project_files(tmp_path / "p", review_rows(12))
    write_split_params(root, yaml.safe_load((root / "params.yaml").read_text()))
    shutil.copy(repo / "dvc.yaml", root / "dvc.yaml")  # its deps and outs are walked too
    return root


def test_preflight_says_how_to_move_a_task_params_yaml_still_holds(tmp_path, repo):
    root = project_files(tmp_path / "old", review_rows(12))  # the task in params.yaml
    shutil.copy(repo / "dvc.yaml", root / "dvc.yaml")  # which reads it from task.yaml
    done = preflight(root)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("task.yaml: not found, and dvc.yaml reads the task from it")
    assert "move the `task` section of params.yaml" in done.stderr


def test_preflight_passes_a_sound_project_with_one_line(project):
    (project / "data" / "raw" / "new\nline.jsonl").write_text("")  # DVC hashes this one
    done = preflight(project)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert len(done.stdout.splitlines()) == 1 and "ok" in done.stdout


def test_preflight_names_a_file_name_that_is_not_utf8_escaped(project):
    raw = os.fsencode(project / "data" / "raw")
    try:
        with open(os.path.join(raw, b"caf\xe9.csv"), "wb") as out:
            out.write(b"text\n")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    done = preflight(project)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "data/raw/caf\\xe9.csv: file name is not UTF-8, which DVC cannot hash; rename it to "
        "UTF-8, e.g. mv -- $'data/raw/caf\\xe9.csv' 'data/raw/café.csv'"
    ]
    # The suggested command, as a person would paste it, renames the file.
    command = done.stderr.split("e.g. ", 1)[1]
    subprocess.run(["bash", "-c", command], cwd=project, check=True)
    assert preflight(project).returncode == 0


def test_preflight_reports_params_and_prompt_problems_one_line_each(project):
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  seed: 7\n", f"  seed: {2**64}\n"))
    (project / "prompts" / "review.jinja").write_text("no header\n")
    done = preflight(project)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()  # the prompt is checked only with valid params
    assert line == f"params.yaml: prep.seed: expected an integer in [0, 4294967295], got {2**64}"
    params.write_text(params.read_text().replace(f"  seed: {2**64}\n", "  seed: 7\n"))
    [line] = preflight(project).stderr.splitlines()
    assert line.startswith("prompts/review.jinja: ")  # its wording: llmops.config.prompts


def test_preflight_stops_a_bomb_before_dvc_reads_it(project):
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  seed: 7\n", f"  seed: {wide_bomb()}\n"))
    done = preflight(project)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert "more than 100,000 values once aliases are expanded" in line


@pytest.mark.parametrize("target", ["repro", "dag", "pull", "push", "exp-table"])
def test_every_dvc_target_runs_the_preflight_before_dvc(repo, target):
    # -n: print the recipes without running them; -o: the venv counts as installed.
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=repo,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    lines = done.stdout.splitlines()
    first_dvc = next(i for i, line in enumerate(lines) if re.search(r"\bdvc (\w+)", line))
    assert "python -m llmops.project.preflight" in lines[:first_dvc], lines


def test_workflows_reach_dvc_only_through_make(repo):
    # So every DVC run in CI goes through the preflight (make repro, make pull, ...).
    for workflow in (repo / ".github" / "workflows").glob("*.yml"):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                assert not re.search(r"\bdvc\s", step.get("run", "")), (workflow.name, step)
