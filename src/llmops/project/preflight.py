"""Check what DVC is about to read, before it runs: one line per problem, instead of a
traceback from inside DVC (or a machine out of memory).

- params.yaml and task.yaml load and validate (`llmops.config.params`): their aliases are
  bounded there, and DVC reads the same files itself (for `${task.prompt}` and the stages'
  params), with a reader that would expand an alias bomb in memory. When dvc.yaml reads the
  task from task.yaml and there is none (a project made before it), one line says what to
  move there.
- Every file and folder name under `data/` and under each dep and out dvc.yaml lists is
  UTF-8: DVC cannot hash a name that is not (`'utf-8' codec can't encode character
  '\\udce9' ... surrogates not allowed`) and stops before the first stage runs. Names with
  newlines or other control characters pass: DVC hashes, pushes and pulls them, and prep
  shows them escaped.
- The prompt template task.yaml `task.prompt` names loads, with the task's variables.

Prints one "ok" line when all is well; else one line per problem on stderr, exit status 1.
`make repro`, `pull`, `push`, `dag` and `exp-table` run it first.

Run: python -m llmops.project.preflight [--params params.yaml] [--dvc-yaml dvc.yaml] [--data data]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from llmops.config.params import DECLARED, TASK_FILE, Params, ParamsError, load_params, task_file
from llmops.config.paramsfile import read_text, read_yaml
from llmops.config.prompts import PromptError, check_template
from llmops.config.task import Task
from llmops.data.sources import display

MAX_SHOWN = 20  # bad names listed one per line; past that, one line counts the rest


def check_params(path: Path) -> tuple[Params | None, list[str]]:
    """The validated params, or None and the one-line reason."""
    try:
        return load_params(path), []
    except ParamsError as err:
        return None, [_one_line(str(err))]


def check_declaration(params_path: Path, dvc_yaml: Path) -> list[str]:
    """The task declaration's file is missing while dvc.yaml reads the task from it: a
    project made before task.yaml, with the template's newer dvc.yaml. Says how to move."""
    try:
        pipeline = read_yaml(read_text(dvc_yaml), str(dvc_yaml)) if dvc_yaml.exists() else {}
    except ParamsError:
        return []  # tracked_roots reports it
    found = pipeline.get("vars") if isinstance(pipeline, dict) else None
    wanted = any(isinstance(v, str) and v.split(":")[0] == TASK_FILE for v in found or ())
    if not wanted or task_file(params_path).is_file():
        return []
    keys = ", ".join(DECLARED["prep"])
    return [
        f"{task_file(params_path)}: not found, and {dvc_yaml} reads the task from it: move the "
        f"`task` section of {params_path}, and prep's {keys}, into {TASK_FILE} (make init "
        "writes it; docs/parameters.md)"
    ]


def check_prompt(params: Params) -> list[str]:
    """The problem with the task's prompt template, if any (a missing file, a bad header,
    a variable the task does not provide, a render that breaks a bound at the longest
    inputs)."""
    path = params.task.prompt
    try:
        check_template(path, Task.from_params(params.task))
    except PromptError as err:  # names the file
        return [_one_line(str(err))]
    except (OSError, ValueError) as err:  # a folder, bytes that are not UTF-8, ...
        return [_one_line(f"{path}: cannot be read as a prompt template ({err})")]
    return []


def tracked_roots(dvc_yaml: Path, data: Path) -> tuple[list[Path], list[str]]:
    """`data` and every dep and out path dvc.yaml names (`${...}` ones are params.yaml's,
    checked by check_prompt), in order, none inside another; and the problem reading
    dvc.yaml."""
    roots = [data]
    try:
        pipeline = read_yaml(read_text(dvc_yaml), str(dvc_yaml)) if dvc_yaml.exists() else {}
    except ParamsError as err:
        return roots, [_one_line(str(err))]
    stages = pipeline.get("stages") if isinstance(pipeline, dict) else None
    for stage in stages.values() if isinstance(stages, dict) else ():
        for kind in ("deps", "outs", "metrics", "plots"):
            entries = stage.get(kind) if isinstance(stage, dict) else None
            for entry in entries if isinstance(entries, list) else ():
                path = next(iter(entry), None) if isinstance(entry, dict) else entry
                if isinstance(path, str) and "${" not in path and Path(path) not in roots:
                    roots.append(Path(path))
    return [r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots)], []


def bad_names(roots: list[Path]) -> Iterator[bytes]:
    """Paths under `roots` (the roots included) whose name is not UTF-8, as bytes; below a
    bad folder nothing more is reported. Walked as bytes, so no name is decoded on the way."""
    for root in roots:
        top = os.fsencode(root)
        if not os.path.lexists(top):
            continue
        if not _utf8(top):
            yield top
            continue
        for folder, dirs, files in os.walk(top):
            for name in sorted(files + dirs):
                if not _utf8(name):
                    yield os.path.join(folder, name)
            dirs[:] = sorted(d for d in dirs if _utf8(d))


def rename_hint(path: bytes) -> str:
    """One line: the path shown escaped, why DVC stops, and a command that renames it."""
    shown = display(os.fsdecode(path))
    kind = "folder" if os.path.isdir(path) else "file"
    # $'...' (bash, zsh) reads the \xHH and \\ escapes that `display` writes.
    source = "$'" + shown.replace("'", "\\'") + "'"
    target = shlex.quote(_utf8_guess(path))
    return (
        f"{shown}: {kind} name is not UTF-8, which DVC cannot hash; rename it to UTF-8, "
        f"e.g. mv -- {source} {target}"
    )


def check_names(roots: list[Path]) -> list[str]:
    """A line per name under `roots` that is not UTF-8 (the first MAX_SHOWN, then a count)."""
    bad = list(bad_names(roots))
    more = [f"... and {len(bad) - MAX_SHOWN} more names that are not UTF-8"]
    return [rename_hint(path) for path in bad[:MAX_SHOWN]] + more * (len(bad) > MAX_SHOWN)


def _utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")  # strict: lone surrogates (CESU-8) are refused too, as by DVC
    except UnicodeDecodeError:
        return False
    return True


def _utf8_guess(path: bytes) -> str:
    """The name the bytes most likely meant: Windows-1252 (a Latin-1 export) where they
    read as that, else UTF-8 with each bad byte as `_`."""
    head, name = os.path.split(path)
    try:
        text = name.decode("cp1252")
    except UnicodeDecodeError:
        text = name.decode("utf-8", "replace").replace("\ufffd", "_")
    text = "".join(c if c.isprintable() else "_" for c in text)
    return os.path.join(head.decode("utf-8", "replace").replace("\ufffd", "_"), text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def preflight(params_path: Path, dvc_yaml: Path, data: Path) -> list[str]:
    """Every problem found, one line each; empty when DVC may run."""
    moved = check_declaration(params_path, dvc_yaml)
    if moved:
        return moved
    params, problems = check_params(params_path)
    if params is not None:
        problems += check_prompt(params)
    roots, unreadable = tracked_roots(dvc_yaml, data)
    return problems + unreadable + check_names(roots)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    problems = preflight(args.params, args.dvc_yaml, args.data)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(1)
    declared = task_file(args.params)
    files = f"{args.params} + {declared}" if declared.is_file() else str(args.params)
    checked = f"{files}, its prompt, file names under {args.data} and dvc.yaml's paths"
    print(f"preflight: ok ({checked})")


if __name__ == "__main__":
    main()
