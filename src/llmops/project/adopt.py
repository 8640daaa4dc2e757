"""Turn a fresh clone of the template into your project, from your data.

Run: make init DATA=path/to/train.csv [TEST=path/to/test.csv] [INPUT=text] [LABELS=label]
     [TEXTS=answer] [LABEL_CASE=fold]
     (python -m llmops.project.adopt --data=... [--test=...] [--input=...] [--labels=...]
      [--texts=...] [--label-case=fold])

It reads your data file (CSV, TSV, JSON Lines or Parquet, as prep does, in one streaming
pass: memory does not grow with the rows; a file past `prep.max_file_mb` is refused) and:
- declares the task in task.yaml (`task`, and the data's shape under `prep`): the input
  column(s) as text fields, the label column(s) as label fields with their values read
  from the data (counts shown), optional free-text output column(s) (with TEXTS, LABELS
  may name none); column names that are not valid field names (or that a template reads
  as something else: `self`, `range`, `not`) are mapped in `prep.columns`; `id` and
  `split` columns are used when present (and valid) in every file;
- cleans label values as prep compares them (`llmops.project.labelset`: Unicode form, invisible
  characters, spaces) and reports the values it merged; it refuses values that differ only
  in case unless LABEL_CASE=fold (then merged, and `prep.label_case: fold`), a label column
  holding personal data (e-mails, phone numbers ...), and one most of whose values have too
  few rows to be learned and split (it warns when only some do);
- writes a starter prompt, prompts/task.jinja (it lists the label values when there are at
  most 20 of them; with more, the model learns them in training and prompts stay short);
- copies the data into data/raw/; a TEST file is pinned whole to the test split
  (`prep.pin_files`), else 10% of each label's rows are held out (`prep.test_fraction`);
- sizes `train.max_length`, `base.tiny.context_length` and `decoding.max_new_tokens` to the
  data, and writes gates that name the task's metrics;
- removes the worked example (each examples/*/example.yaml lists the files it owns) and the
  pipeline state that described it (dvc.lock, metrics/, reports/, stage outputs).
Nothing is changed until the new params and prompt have been checked and the data files
have a place; a file the example owns, or a file with other contents under the same name in
data/raw, is refused rather than overwritten. Comments in params.yaml and task.yaml stay; a
project without task.yaml (made before it) gets one, and its params.yaml's declaration
moves there.
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import shutil
import tempfile
from pathlib import Path

from llmops.config.params import TASK_FILE, ParamsError, PrepParams, load_params
from llmops.config.prompts import PromptError
from llmops.data.sources import Limits
from llmops.project.columnstats import FileStats, describe, scan
from llmops.project.declaration import (
    HELD_OUT,
    INPUT_NAMES,
    LABEL_NAMES,
    PROMPT,
    Column,
    InitError,
    pick,
    starter_prompt,
    write_declaration,
    yaml_tool,
)
from llmops.project.labelset import empty_splits

PIPELINE_STATE = (
    "dvc.lock",
    "metrics",
    "reports/prep",
    "reports/train",
    "reports/eval",
    "data/prepared",
    "data/quarantine",
    "data/eval/predictions.jsonl",
    "models/base",
    "models/adapter",
    "models/checkpoints",
    "benchmarks/results/noise.json",
)
MERGES_SHOWN = 12  # notes (merged label values, warnings) printed per column


def example_files(root: Path) -> dict[Path, list[str]]:
    """Every worked example's folder, with the files it owns elsewhere (its example.yaml)."""
    y = yaml_tool()
    return {
        manifest.parent: list(y.load(manifest.read_text(encoding="utf-8")).get("owns", []))
        for manifest in sorted(root.glob("examples/*/example.yaml"))
    }


def remove_example(root: Path) -> list[str]:
    """Delete every worked example and the files it owns, and the pipeline state that
    described it. Returns what was removed."""
    removed = []
    for folder, owned in example_files(root).items():
        removed += [rel for rel in owned if _remove(root / rel)]
        shutil.rmtree(folder)
        removed.append(folder.relative_to(root).as_posix() + "/")
    examples = root / "examples"
    if examples.is_dir() and not any(
        p.is_dir() and p.name != "__pycache__" for p in examples.iterdir()
    ):
        shutil.rmtree(examples)
        removed.append("examples/")
    return removed + [rel for rel in PIPELINE_STATE if _remove(root / rel)]


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False


def place(root: Path, data: Path, test: Path | None) -> dict[Path, str]:
    """Each data file's name under data/raw/, checked so that nothing is lost."""
    raw = (root / "data" / "raw").resolve()
    owned = {(root / rel).resolve() for files in example_files(root).values() for rel in files}
    if test is not None and test.resolve() == data.resolve():
        raise InitError(f"DATA and TEST are the same file ({data})")
    names: dict[Path, str] = {}
    for path in (data, test) if test is not None else (data,):
        if path.resolve() in owned:
            raise InitError(
                f"{path} belongs to the worked example, which init removes; "
                "copy it elsewhere and pass that copy"
            )
        inside = path.resolve().is_relative_to(raw)
        name = path.resolve().relative_to(raw).as_posix() if inside else path.name
        if not inside and name in names.values():
            name = f"test-{name}"
        target = raw / name
        same = target.resolve() == path.resolve()
        if target.exists() and not same and not filecmp.cmp(target, path, shallow=False):
            raise InitError(f"data/raw/{name} exists and is another file; move it away first")
        names[path] = name
    return names


def source_columns(files: list[FileStats], taken: list[str]) -> dict:
    """`id` and `split` columns, used when every file has them (and the splits are valid)."""

    def everywhere(name: str) -> bool:
        return name not in taken and all(name in f.stats for f in files)

    valid = all(f.split_valid("split") for f in files)
    return {
        "id": "id" if everywhere("id") else None,
        "split": "split" if everywhere("split") and valid else None,
    }


def init(
    root: Path,
    data: Path,
    test: Path | None,
    inputs: str,
    labels: str,
    texts: str,
    label_case: str = "exact",
):
    """Do everything the module docstring lists; returns (columns, removed, other files)."""
    prep = project_prep(root)
    given = {c.strip() for c in f"{inputs},{labels},{texts}".split(",")}
    wanted = given | set(INPUT_NAMES) | set(LABEL_NAMES) | {"id", "split"}
    limits = Limits.of(prep)  # as prep reads
    files = [scan(p, wanted, limits) for p in (data, test) if p is not None]
    names = files[0].columns
    chosen_inputs = pick(inputs, names, INPUT_NAMES, "input")
    chosen_texts = pick(texts, names, (), "text output") if texts else []
    if labels or not chosen_texts:
        chosen_labels = pick(labels, names, LABEL_NAMES, "label")
    else:  # free text out: a label column only when one is named or found by name
        chosen_labels = [c for c in LABEL_NAMES if c in names][:1]
    taken = chosen_inputs + chosen_labels + chosen_texts
    if len(set(taken)) < len(taken):
        raise InitError(f"a column is named twice among INPUT, LABELS and TEXTS: {taken}")
    for f in files[1:]:
        missing = [c for c in taken if c not in f.stats]
        if missing:
            raise InitError(f"{f.path}: columns {missing} missing; it has {f.columns}")
    fold = label_case == "fold"
    columns = [describe(c, "input", "text", files, fold) for c in chosen_inputs]
    columns += [describe(c, "output", "label", files, fold) for c in chosen_labels]
    columns += [describe(c, "output", "text", files, fold) for c in chosen_texts]
    fields = [c.field for c in columns]
    if len(set(fields)) < len(fields):
        raise InitError(f"two columns map to the same field name: {fields}")
    names_in_raw = place(root, data, test)
    source = source_columns(files, taken)
    if source["split"] is None:  # a split column pins rows: prep judges what it leaves
        check_splits(columns, files[0], prep.val_fraction, held_out=test is None)
    source["test"] = [glob.escape(names_in_raw[test])] if test else []
    prompt = starter_prompt(columns)
    params = (root / "params.yaml").read_text(encoding="utf-8")
    declared = root / TASK_FILE
    task_text = declared.read_text(encoding="utf-8") if declared.is_file() else None
    text, task_out = write_declaration(params, task_text, columns, source, prompt, label_case)
    check(text, task_out, prompt)
    removed = remove_example(root)
    others = sorted(p.name for p in (root / "data" / "raw").glob("*") if p.is_file())
    for path, name in names_in_raw.items():
        target = root / "data" / "raw" / name
        if target.resolve() != path.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    (root / PROMPT).parent.mkdir(parents=True, exist_ok=True)
    (root / PROMPT).write_text(prompt, encoding="utf-8")
    (root / "params.yaml").write_text(text, encoding="utf-8")
    declared.write_text(task_out, encoding="utf-8")
    return columns, removed, [n for n in others if n not in names_in_raw.values()]


def project_prep(root: Path) -> PrepParams:
    """The project's prep params as they are before init (the file size limit, the val
    fraction)."""
    try:
        return load_params(root / "params.yaml").prep
    except ParamsError as err:
        raise InitError(f"{err}; fix it first (init edits params.yaml and task.yaml)") from None


def check_splits(columns: list[Column], data: FileStats, val_fraction: float, held_out: bool):
    """InitError when prep's stratified split would leave val (or test, held out from the
    data when there is no TEST file) empty: every split is needed to train and evaluate."""
    label = next((c for c in columns if c.kind == "label" and c.role == "output"), None)
    groups = label.in_data if label else (data.rows,)
    fractions = {"val": val_fraction} | ({"test": HELD_OUT} if held_out else {})
    empty = empty_splits(groups, fractions)
    if empty:
        per = f"of each label's rows (field {label.field!r})" if label else "of the rows"
        raise InitError(
            f"{data.path}: the {' and '.join(empty)} split(s) would be empty: prep holds out "
            f"{', '.join(f'{fractions[s]:.0%} ({s})' for s in empty)} {per}, rounded, and "
            f"no group has enough rows for one. Add rows{' or group rare labels' if label else ''}"
            f"{', or pass a TEST file (TEST=...)' if held_out else ''}"
        )


def check(params_text: str, task_text: str, prompt: str) -> None:
    """The new params and task load, the prompt fits the task and the gates name real
    metrics."""
    from llmops.config.prompts import load_template
    from llmops.config.task import Task
    from llmops.evaluate.metrics import check_gates

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / PROMPT).parent.mkdir(parents=True)
        (folder / PROMPT).write_text(prompt, encoding="utf-8")
        (folder / "params.yaml").write_text(params_text, encoding="utf-8")
        (folder / TASK_FILE).write_text(task_text, encoding="utf-8")
        try:
            params = load_params(folder / "params.yaml")
            task = Task.from_params(params.task)
            load_template(folder / PROMPT, task.variables())
            check_gates(task, params.gate)
        except (ParamsError, PromptError) as err:  # name the files as they will be
            raise InitError(str(err).replace(f"{folder}/", "")) from None


def summary(columns: list[Column], removed: list[str], others: list[str]) -> str:
    lines = [f"Task declared in {TASK_FILE}, prompt in prompts/task.jinja:"]
    for c in columns:
        mapped = f" (column {c.column!r})" if c.field != c.column else ""
        lines.append(f"  {c.role:6} {c.field}{mapped}: {c.kind}")
        if c.kind == "label":
            shown = ", ".join(f"{v} ({n})" for v, n in zip(c.values, c.counts, strict=True))
            lines.append(f"         {len(c.values)} labels: {shown}")
        notes = list(c.notes[:MERGES_SHOWN])
        if len(c.notes) > MERGES_SHOWN:
            notes.append(f"... and {len(c.notes) - MERGES_SHOWN} more")
        lines += [f"         {note}" for note in notes]
    if removed:
        lines.append(f"Removed the worked example and its pipeline state: {', '.join(removed)}")
    if others:
        lines.append(f"Also in data/raw/, and read by prep too: {', '.join(others)}")
    lines += [
        "Next:",
        "  make repro      # prep -> base -> train -> eval on your data",
        "  make gate       # the quality gates (params.yaml gate)",
        "  make test       # the test suite",
        "  git add -A && git commit -m 'My task'   (data of more than a few MB: "
        "git rm -r --cached data/raw && dvc add data/raw)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training data file (CSV, JSONL, Parquet)")
    parser.add_argument(
        "--test", default="", help="a separate test file, kept whole as the test set"
    )
    parser.add_argument("--input", default="", help="input column(s), comma-separated")
    parser.add_argument("--labels", default="", help="label column(s) to predict")
    parser.add_argument("--texts", default="", help="free-text column(s) to generate")
    parser.add_argument(
        "--label-case",
        default="exact",
        metavar="{exact,fold}",
        help="fold: label values that differ only in letter case are one label",
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="the project's folder")
    args = parser.parse_args(argv)
    args.label_case = args.label_case or "exact"  # make passes LABEL_CASE= as empty
    if args.label_case not in ("exact", "fold"):
        parser.error(f"--label-case: {args.label_case!r}; expected exact or fold")
    if not args.data:
        raise SystemExit("init: give your data: make init DATA=path/to/train.csv")
    try:
        test = Path(args.test) if args.test else None
        done = init(
            args.root, Path(args.data), test, args.input, args.labels, args.texts, args.label_case
        )
    except (InitError, ValueError) as err:
        raise SystemExit(f"init: {err}") from None
    print(summary(*done))


if __name__ == "__main__":
    main()
