"""dvc.yaml is consistent with the code: every path a stage's command names is a declared
dependency or output (so changing an input, a prompt template say, re-runs the stage), and
each stage has its module, params section and config class under one name."""

from __future__ import annotations

import dataclasses
import itertools
import shlex

import yaml

from llmops.params import Params


def _names(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def undeclared_paths(stage: dict) -> list[str]:
    """Paths passed as `--flag PATH` in the command that are neither deps nor outputs."""
    args = shlex.split(stage["cmd"])
    declared = set()
    for key in ("deps", "outs", "metrics", "plots"):
        declared |= _names(stage.get(key, []))
    named = [value for flag, value in itertools.pairwise(args) if flag.startswith("--")]
    # params.yaml is tracked per section through `params:`, not as a whole file.
    return [p for p in named if ("/" in p or "." in p) and p != "params.yaml" and p not in declared]


def test_every_path_in_a_command_is_declared(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert {name: undeclared_paths(s) for name, s in stages.items()} == {n: [] for n in stages}


def test_an_undeclared_prompt_is_caught():
    stage = {
        "cmd": "python -m llmops.stages.train --data data/prepared --prompt prompts/triage.jinja",
        "deps": ["data/prepared"],
    }
    assert undeclared_paths(stage) == ["prompts/triage.jinja"]


def test_one_name_for_stage_module_params_section_and_config_class(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    sections = {f.name: f.type for f in dataclasses.fields(Params)}
    for name, stage in stages.items():
        module = f"src/llmops/stages/{name}.py"
        assert (repo / module).exists() and module in stage["deps"], name
        assert f"-m llmops.stages.{name} " in stage["cmd"], name
        tracked = [p for p in stage["params"] if p == name or p.startswith(f"{name}.")]
        assert tracked, f"{name}: dvc.yaml must track params section {name!r} (or its keys)"
        assert sections[name] == f"{name.capitalize()}Params", name
