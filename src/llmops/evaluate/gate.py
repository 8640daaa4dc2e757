"""Quality gates: the fine-tuned model's test metrics against params.yaml `gate`.

Run: make gate   (python -m llmops.evaluate.gate --params params.yaml --metrics metrics/eval.json
                  --examples metrics/eval_examples.csv --baseline main)

Gate names are metric names of the task (`python -m llmops.evaluate.metrics` lists them); a gate
naming a metric the task does not have is a params error.

`min` gates are absolute bounds: floors, or ceilings for metrics where lower is better.
`max_drop` gates bound the regression against the baseline ref's committed metrics (read
from git by `llmops.evaluate.baseline`), on evidence: a regression gate fails only when the drop
exceeds `max_drop` AND the paired test over the test examples (llmops.evaluate.stats, on both runs'
committed per-example records) says the baseline is better at `gate.confidence`. A metric
with no per-example scores (BLEU, test_loss, ...) or a baseline without its record is
judged by the threshold alone, and the table says so. When the baseline ref has no
committed metrics (a first run) regression gates are reported as skipped, never as passed.
Prints a table of every gate and exits 1 when any fails, naming the metric, the drop, its
interval and the threshold.

Every input is checked before it is used, and a bad one stops the command with one line
naming it: a metrics file or per-example record that is missing, not UTF-8, or not the
shape eval writes (here or committed at the baseline: `llmops.evaluate.metrics.eval_metrics`,
`llmops.evaluate.predictions.read_record`); a baseline ref that is not a valid git ref name
or commit id with optional `~N`/`^N` suffixes (`llmops.evaluate.baseline.check_ref`, also
used by the report), or that git does not know.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from llmops.config.params import GateParams, ParamsError
from llmops.config.task import Task
from llmops.evaluate.baseline import at_ref, check_ref
from llmops.evaluate.metrics import MODEL, InputError, eval_metrics, load_checked, metric_names
from llmops.evaluate.predictions import read_record
from llmops.evaluate.stats import Change, compare, pair, training_noise


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
        results.append(
            regression(
                name, value, baseline[metric], drop, higher[metric], change, gates.confidence
            )
        )
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
    """Paired changes of `metrics` (llmops.evaluate.stats), with the training noise of the metrics
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


def baseline_metrics(ref: str, path: str, cwd: Path | None = None) -> dict | None:
    """The fine-tuned model's metrics committed at `ref`, or None when none are committed
    there; InputError when they are but cannot be read."""
    text = at_ref(ref, path, cwd)
    return None if text is None else eval_metrics(text, f"{path} at {ref}")[MODEL]


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
