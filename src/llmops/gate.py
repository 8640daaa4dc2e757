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
judged by the threshold alone, and the table says so. With no baseline metrics (first run,
or the ref is unknown) regression gates are reported as skipped, never as passed. Prints a
table of every gate and exits 1 when any fails, naming the metric, the drop, its interval
and the threshold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmops.metrics import load_checked, metric_names
from llmops.params import GateParams, ParamsError
from llmops.predictions import parse_examples
from llmops.stats import Change, compare, pair, training_noise
from llmops.task import Task

MODEL = "tuned"  # gates apply to the fine-tuned model's metrics


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


def paired_records(old_text: str | None, new_text: str | None):
    """Both runs' per-example records joined by example, or None and why not."""
    if old_text is None or new_text is None:
        return None, "No per-example record (metrics/eval_examples.csv) at the baseline."
    try:
        return pair(parse_examples(old_text), parse_examples(new_text)), ""
    except (ValueError, KeyError) as err:
        return None, f"The baseline's per-example record is in another format ({err})."


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


def at_ref(ref: str, path: str, cwd: Path | None = None) -> str | None:
    """A committed file's text at `ref` (or `origin/<ref>`), or None."""
    for candidate in (ref, f"origin/{ref}"):
        done = subprocess.run(
            ["git", "show", f"{candidate}:{path}"], cwd=cwd, capture_output=True, text=True
        )
        if done.returncode == 0:
            return done.stdout
    return None


def baseline_metrics(ref: str, path: str, cwd: Path | None = None) -> dict | None:
    """The fine-tuned model's metrics committed at `ref`, or None."""
    text = at_ref(ref, path, cwd)
    if text is None:
        return None
    try:
        return json.loads(text).get(MODEL)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, required=True, help="the eval metrics file")
    parser.add_argument("--examples", type=Path, required=True, help="per-example record")
    parser.add_argument("--noise", type=Path, help="training noise (make noise), if measured")
    parser.add_argument("--baseline", default="main", help="git ref of the baseline")
    args = parser.parse_args(argv)
    try:
        params, task = load_checked(args.params)
        noise = training_noise(args.noise)
    except (ParamsError, ValueError) as err:
        raise SystemExit(f"gate: {err}") from None
    if not args.metrics.exists():
        raise SystemExit(f"gate: {args.metrics} not found (run the pipeline: make repro)")
    metrics = json.loads(args.metrics.read_text(encoding="utf-8"))[MODEL]
    baseline = baseline_metrics(args.baseline, args.metrics.as_posix())
    gates = params.gate
    current = args.examples.read_text(encoding="utf-8") if args.examples.exists() else None
    pairs, _ = paired_records(at_ref(args.baseline, args.examples.as_posix()), current)
    changes = comparisons(task, pairs, list(gates.max_drop), gates.confidence, noise)
    results = check(task, gates, metrics, baseline, changes)
    print(table(results))
    if baseline is None:
        print(f"\nno {args.metrics} at {args.baseline}: regression gates skipped")
    failed = [f"{r.gate} ({r.note})" if r.change else r.gate for r in results if r.status == "fail"]
    if failed:
        raise SystemExit(f"\n{len(failed)} gate(s) failed: {'; '.join(failed)}")
    print(f"\nall {sum(r.status == 'pass' for r in results)} checked gates pass")


if __name__ == "__main__":
    main()
