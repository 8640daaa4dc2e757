"""dvc.yaml is consistent with the code: every path a stage's command names is a declared
dependency or output (so changing an input, a prompt template say, re-runs the stage), each
stage depends on exactly the modules its code imports, and each stage has its module,
params section and config class under one name."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
import shlex
from pathlib import Path

import yaml

from llmops.config.params import Params

REPO = Path(__file__).resolve().parents[2]


def _names(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def resolve(text: str, params: dict) -> str:
    """DVC's ${a.b} templating, from the values dvc.yaml's `vars` import."""

    def value(match: re.Match) -> str:
        out = params
        for key in match.group(1).split("."):
            out = out[key]
        return str(out)

    return re.sub(r"\$\{([\w.]+)\}", value, text)


def stages() -> dict:
    text = (REPO / "dvc.yaml").read_text()
    assert yaml.safe_load(text)["vars"] == ["task.yaml:task"]  # only the task, from task.yaml
    declared = {"task": yaml.safe_load((REPO / "task.yaml").read_text())["task"]}
    return yaml.safe_load(resolve(text, declared))["stages"]


def undeclared_paths(stage: dict) -> list[str]:
    """Paths passed as `--flag PATH` in the command that are neither deps nor outputs."""
    args = shlex.split(stage["cmd"])
    declared = set()
    for key in ("deps", "outs", "metrics", "plots"):
        declared |= _names(stage.get(key, []))
    named = [value for flag, value in itertools.pairwise(args) if flag.startswith("--")]
    # params.yaml is tracked per section through `params:`, not as a whole file.
    return [p for p in named if ("/" in p or "." in p) and p != "params.yaml" and p not in declared]


def test_every_path_in_a_command_is_declared():
    found = stages()
    assert {name: undeclared_paths(s) for name, s in found.items()} == {n: [] for n in found}


def test_an_undeclared_prompt_is_caught():
    stage = {
        "cmd": "python -m llmops.stages.train --data data/prepared --prompt prompts/task.jinja",
        "deps": ["data/prepared"],
    }
    assert undeclared_paths(stage) == ["prompts/task.jinja"]


def test_the_prompt_path_is_stated_once_in_the_task_declaration():
    raw = (REPO / "dvc.yaml").read_text()
    assert "prompts/" not in raw  # only ${task.prompt}
    prompt = yaml.safe_load((REPO / "task.yaml").read_text())["task"]["prompt"]
    assert "task" not in yaml.safe_load((REPO / "params.yaml").read_text())
    for name in ("base", "train"):
        assert prompt in stages()[name]["deps"], name


def test_every_stage_tracks_the_task_declaration_from_task_yaml():
    # Every stage reads the task; prep also reads the data's shape (task.yaml's prep keys).
    for name, stage in stages().items():
        tracked = [
            e["task.yaml"] for e in stage["params"] if isinstance(e, dict) and "task.yaml" in e
        ]
        assert tracked and "task" in tracked[0], name
        assert "task" not in stage["params"], (
            f"{name}: task is read from task.yaml, not params.yaml"
        )
    assert "prep" in next(e["task.yaml"] for e in stages()["prep"]["params"] if isinstance(e, dict))


def imports(module: str, seen: set[Path] | None = None) -> set[Path]:
    """The library files `module` imports, directly or not (its import closure)."""
    seen = set() if seen is None else seen
    base = REPO / "src" / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.exists() or path in seen:
        return seen
    seen.add(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            if name.startswith("llmops"):
                imports(name, seen)
    return seen


def test_each_stage_depends_on_exactly_the_code_it_imports():
    for name, stage in stages().items():
        closure = imports(f"llmops.stages.{name}")
        code = {p.relative_to(REPO).as_posix() for p in closure if p.name != "__init__.py"}
        declared = {d for d in _names(stage["deps"]) if d.startswith("src/")}
        assert declared == code, (
            f"{name}: missing {sorted(code - declared)}, not imported {sorted(declared - code)}"
        )


def test_one_name_for_stage_module_params_section_and_config_class():
    sections = {f.name: f.type for f in dataclasses.fields(Params)}
    for name, stage in stages().items():
        module = f"src/llmops/stages/{name}.py"
        assert (REPO / module).exists() and module in stage["deps"], name
        assert f"-m llmops.stages.{name} " in stage["cmd"], name
        tracked = [
            p
            for p in stage["params"]
            if isinstance(p, str) and (p == name or p.startswith(f"{name}."))
        ]
        assert tracked, f"{name}: dvc.yaml must track params section {name!r} (or its keys)"
        assert sections[name] == f"{name.capitalize()}Params", name


def test_decoding_is_its_own_section_and_eval_tracks_all_of_it():
    # Any decoding change re-runs eval; gates and report settings do not.
    assert "decoding" in stages()["eval"]["params"]
    tracked = {p for p in stages()["eval"]["params"] if isinstance(p, str)}
    assert not {"gate", "report"} & tracked
