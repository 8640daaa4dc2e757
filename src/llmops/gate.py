"""Quality gates: the fine-tuned model's test metrics against params.yaml `gate`.

Run: make gate   (python -m llmops.gate --params params.yaml --metrics metrics/eval.json
                  --examples metrics/eval_examples.csv --baseline main)

Gate names are metric names of the task (`python -m llmops.metrics` lists them); a gate
naming a metric the task does not have is a params error.

`min` gates are absolute bounds: floors, or ceilings for metrics where lower is better.
`max_drop` gates bound the regression against the baseline ref's committed metrics (read
with `git show <ref>:<path>`), on evidence: a regression gate fails only when the drop
exceeds `max_drop` AND the paired test over the test examples (llmops.stats, on both runs'
committed per-example records) says the baseline is better at `gate.confidence`. A metric
with no per-example scores (BLEU, test_loss, ...) or a baseline without its record is
judged by the threshold alone, and the table says so. When the baseline ref has no
committed metrics (a first run) regression gates are reported as skipped, never as passed.
Prints a table of every gate and exits 1 when any fails, naming the metric, the drop, its
interval and the threshold.

Every input is checked before it is used, and a bad one stops the command with one line
naming it: a metrics file or per-example record that is missing, not UTF-8, or not the
shape eval writes (here or committed at the baseline); a baseline ref that is not a valid
git ref name or commit id (`check_ref`, also used by the report), or that git does not know.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmops.metrics import load_checked, metric_names
from llmops.params import GateParams, ParamsError
from llmops.predictions import parse_examples
from llmops.stats import Change, compare, pair, training_noise
from llmops.task import Task

MODEL = "tuned"  # gates apply to the fine-tuned model's metrics
COMMIT_ID = re.compile(r"[0-9a-fA-F]{7,64}")
LABEL_COLUMNS = ("_answer", "_reference")  # a record's other columns are scores
EVAL_SHAPE = 'a JSON object of models ("tuned", ...), each an object of metric names to numbers'


class InputError(ValueError):
    """An input of the gate or the report that cannot be used (a metrics file, a per-example
    record, the baseline ref or a file committed there); the message names it."""


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome."""

    gate: str  # e.g. "label_accuracy >= 0.8"
    value: float | None
    threshold: float | None
    status: str  # pass, fail or skipped
    note: str = ""
    change: Change | None = None  # the paired comparison behind a regression gate


def check(
    task: Task,
    gates: GateParams,
    metrics: dict,
    baseline: dict | None,
    changes: dict[str, Change] | None = None,
) -> list[GateResult]:
    """Every gate, in params order: bounds first, then regressions against the baseline."""
    higher = metric_names(task)
    results = []
    for metric, bound in gates.min.items():
        value = metrics.get(metric)
        better = higher[metric]
        sign = ">=" if better else "<="
        ok = value is not None and (value >= bound if better else value <= bound)
        note = "" if value is not None else "metric missing"
        results.append(GateResult(f"{metric} {sign} {bound:g}", value, bound, _status(ok), note))
    for metric, drop in gates.max_drop.items():
        value = metrics.get(metric)
        name = f"{metric} drop <= {drop:g} vs baseline"
        if baseline is None or metric not in baseline:
            results.append(GateResult(name, value, None, "skipped", "no baseline metrics"))
            continue
        change = (changes or {}).get(metric)
        results.append(regression(name, value, baseline[metric], drop, higher[metric], change,
                                  gates.confidence))  # fmt: skip
    return results


def regression(
    name: str, value, old: float, drop: float, better: bool, change: Change | None, confidence
) -> GateResult:
    """A max_drop gate: over the threshold and (when testable) significantly worse."""
    limit = old - drop if better else old + drop
    over = value is None or (value < limit if better else value > limit)
    if change is None:
        note = f"baseline {old:.4f}; threshold only (no per-example scores to test)"
        return GateResult(name, value, round(limit, 6), _status(not over), note)
    sure = change.p_worse < 1 - confidence
    noise = f", training noise ±{change.run_std:.4f}" if change.run_std else ""
    note = (
        f"baseline {old:.4f}; Δ {change.delta:+.4f} [{change.low:+.4f}, {change.high:+.4f}], "
        f"p(worse) {change.p_worse:.4f}, n={change.n}{noise}"
    )
    if over and not sure:
        note += "; within noise"
    return GateResult(name, value, round(limit, 6), _status(not (over and sure)), note, change)


def _status(ok: bool) -> str:
    return "pass" if ok else "fail"


def table(results: list[GateResult]) -> str:
    """Markdown table of the gates."""
    icon = {"pass": "✅ pass", "fail": "❌ fail", "skipped": "⏭️ skipped"}
    lines = ["| gate | value | threshold | result | note |", "|---|---:|---:|---|---|"]
    for r in results:
        value = "n/a" if r.value is None else f"{r.value:.4f}"
        threshold = "n/a" if r.threshold is None else f"{r.threshold:.4f}"
        lines.append(f"| `{r.gate}` | {value} | {threshold} | {icon[r.status]} | {r.note} |")
    return "\n".join(lines)


def paired_records(
    old_text: str | None,
    new_text: str | None,
    path: str = "metrics/eval_examples.csv",
    ref: str = "the baseline",
):
    """Both runs' per-example records joined by example, or None and why not; InputError
    when a record is there but is not one."""
    old, new = read_record(old_text, f"{path} at {ref}"), read_record(new_text, path)
    if new is None:
        return None, f"No per-example record ({path}) in this change."
    if old is None:
        return None, f"No per-example record ({path}) at the baseline."
    return pair(old, new), ""


def comparisons(
    task: Task, pairs, metrics: list[str], confidence: float, noise: dict[str, float]
) -> dict[str, Change]:
    """Paired changes of `metrics` (llmops.stats), with the training noise of the metrics
    `noise` measures; a metric that either record has no column for is left out."""
    found = {}
    for metric in metrics if pairs else []:
        try:
            change = compare(metric, pairs, task, confidence, noise.get(metric))
        except (ValueError, KeyError):  # another task's or an older record
            continue
        if change is not None:
            found[metric] = change
    return found


def check_ref(ref: str) -> str:
    """`ref` once it is a name git accepts for a branch or tag, or a commit id; InputError
    otherwise. Checked before any git command sees it: `-...` would be read as an option."""
    safe = ref.isprintable() and not ref.startswith("-")  # no control characters, no option
    if not safe or not (
        COMMIT_ID.fullmatch(ref)
        or _git("check-ref-format", "--allow-onelevel", ref).returncode == 0
    ):
        raise InputError(
            f"baseline ref {ref!r} is not a valid git ref name or commit id (git "
            "check-ref-format); set BASELINE to a branch, tag or commit, e.g. main"
        )
    return ref


def resolve(ref: str, cwd: Path | None = None) -> str:
    """The commit `ref` names, else `origin/<ref>`; InputError when `ref` is not valid or
    git knows neither."""
    check_ref(ref)
    for candidate in (ref, f"origin/{ref}"):
        done = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=cwd)
        if done.returncode == 0:
            return done.stdout.decode().strip()
        if b"not a git repository" in done.stderr:
            raise InputError(f"baseline ref {ref!r}: {cwd or Path.cwd()} is not a git repository")
    # An error, not a skip: a ref that is missing (a typo, a CI checkout without the base
    # branch) would otherwise pass every regression gate unchecked. A first run has the ref
    # but no metrics committed there, and that is a skip (baseline_metrics returns None).
    raise InputError(f"baseline ref {ref!r} not found (fetch it or set BASELINE)")


def at_ref(ref: str, path: str, cwd: Path | None = None) -> str | None:
    """A committed file's text at `ref` (or `origin/<ref>`), or None when that commit has no
    such file; InputError when the ref is invalid or unknown or the file is not UTF-8."""
    commit = resolve(ref, cwd)
    done = _git("cat-file", "blob", f"{commit}:{path}", cwd=cwd)
    if done.returncode != 0:
        return None
    try:
        return done.stdout.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path} at {ref}: not UTF-8 (byte {err.start})") from None


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True)


def read_input(path: Path) -> str:
    """The text of this change's input file; InputError naming it when it is missing or
    unreadable."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path} not found (run the pipeline: make repro)") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 (byte {err.start})") from None


def eval_metrics(text: str, where: str) -> dict[str, dict[str, float]]:
    """The models and metrics of an eval metrics file (metrics/eval.json); InputError naming
    `where` and the shape expected when it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        problem = (
            f"{err.msg} at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else err
        )
        raise InputError(f"{where}: not valid JSON ({problem}); expected {EVAL_SHAPE}") from None
    if not isinstance(data, dict) or not isinstance(data.get(MODEL), dict):
        got = f"no {MODEL!r} object" if isinstance(data, dict) else _json_kind(data)
        raise InputError(f"{where}: expected {EVAL_SHAPE}, got {got}")
    for model, values in data.items():
        if not isinstance(values, dict):
            expected = "an object of metric names to numbers"
            raise InputError(f"{where}: {model}: expected {expected}, got {_json_kind(values)}")
        for name, value in values.items():
            if not _number(value):
                shown = json.dumps(value)[:40]
                raise InputError(f"{where}: {model}.{name}: expected a number, got {shown}")
    return data


def _number(value) -> bool:
    """A finite int or float (JSON's NaN and Infinity are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past float's range
        return False


def _json_kind(value) -> str:
    kinds = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
             str: "a string", list: "a list", dict: "an object"}  # fmt: skip
    return kinds.get(type(value), type(value).__name__)


def baseline_metrics(ref: str, path: str, cwd: Path | None = None) -> dict | None:
    """The fine-tuned model's metrics committed at `ref`, or None when none are committed
    there; InputError when they are but cannot be read."""
    text = at_ref(ref, path, cwd)
    return None if text is None else eval_metrics(text, f"{path} at {ref}")[MODEL]


def read_record(text: str | None, where: str) -> list[dict[str, str]] | None:
    """The rows of a per-example record (None: no record); InputError naming `where` when
    the text is not one: not CSV, no id and reference columns, a short row, a score that is
    not a number."""
    if text is None:
        return None
    try:
        rows = parse_examples(text)
    except (ValueError, csv.Error) as err:
        raise InputError(f"{where}: {err}") from None
    for n, row in enumerate(rows, start=1):
        if None in row or None in row.values():
            raise InputError(f"{where}: row {n}: not as many cells as the header has columns")
        for column, cell in row.items():
            score = column not in ("id", "reference") and not column.endswith(LABEL_COLUMNS)
            if score and not _finite(cell):
                shown = repr(cell[:40])
                raise InputError(f"{where}: row {n}: {column}: expected a number, got {shown}")
    return rows


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, required=True, help="the eval metrics file")
    parser.add_argument("--examples", type=Path, required=True, help="per-example record")
    parser.add_argument("--noise", type=Path, help="training noise (make noise), if measured")
    parser.add_argument("--baseline", default="main", help="git ref of the baseline")
    args = parser.parse_args(argv)
    examples = args.examples.as_posix()
    try:
        check_ref(args.baseline)  # first: nothing else is read with a ref like `-x` or `a;b`
        params, task = load_checked(args.params)
        noise = training_noise(args.noise)
        metrics = eval_metrics(read_input(args.metrics), args.metrics.as_posix())[MODEL]
        baseline = baseline_metrics(args.baseline, args.metrics.as_posix())
        current = read_input(args.examples) if args.examples.exists() else None
        old = at_ref(args.baseline, examples)
        pairs, _ = paired_records(old, current, examples, args.baseline)
    except (ParamsError, ValueError) as err:
        raise SystemExit(f"gate: {err}") from None
    gates = params.gate
    changes = comparisons(task, pairs, list(gates.max_drop), gates.confidence, noise)
    results = check(task, gates, metrics, baseline, changes)
    print(table(results))
    if baseline is None:
        print(f"\nno {args.metrics} committed at {args.baseline}: regression gates skipped")
    failed = [f"{r.gate} ({r.note})" if r.change else r.gate for r in results if r.status == "fail"]
    if failed:
        raise SystemExit(f"\n{len(failed)} gate(s) failed: {'; '.join(failed)}")
    print(f"\nall {sum(r.status == 'pass' for r in results)} checked gates pass")


if __name__ == "__main__":
    main()
