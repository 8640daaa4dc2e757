"""Quality gates: the fine-tuned model's test metrics against params.yaml `gate`.

Run: make gate   (python -m llmops.gate --params params.yaml --metrics metrics/eval.json
                  --baseline main)

Gate names are metric names of the task (`python -m llmops.metrics` lists them); a gate
naming a metric the task does not have is a params error.

`min` gates are absolute bounds: floors, or ceilings for metrics where lower is better.
`max_drop` gates bound the regression against the baseline ref's committed metrics (read
with `git show <ref>:<metrics path>`); with no baseline there (first run, or the ref is
unknown) they are reported as skipped, never as passed. Prints a table of every gate and
exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmops.metrics import load_checked, metric_names
from llmops.params import GateParams, ParamsError
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


def check(task: Task, gates: GateParams, metrics: dict, baseline: dict | None) -> list[GateResult]:
    """Every gate, in params order: floors first, then regressions against the baseline."""
    higher = metric_names(task)
    results = []
    for metric, floor in gates.min.items():
        value = metrics.get(metric)
        better = higher[metric]
        sign = ">=" if better else "<="
        ok = value is not None and (value >= floor if better else value <= floor)
        note = "" if value is not None else "metric missing"
        results.append(GateResult(f"{metric} {sign} {floor:g}", value, floor, _status(ok), note))
    for metric, drop in gates.max_drop.items():
        value = metrics.get(metric)
        better = higher[metric]
        name = f"{metric} drop <= {drop:g} vs baseline"
        if baseline is None or metric not in baseline:
            results.append(GateResult(name, value, None, "skipped", "no baseline metrics"))
            continue
        limit = baseline[metric] - drop if better else baseline[metric] + drop
        ok = value is not None and (value >= limit if better else value <= limit)
        note = f"baseline {baseline[metric]:.4f}"
        results.append(GateResult(name, value, round(limit, 6), _status(ok), note))
    return results


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
    parser.add_argument("--baseline", default="main", help="git ref of the baseline")
    args = parser.parse_args(argv)
    try:
        params, task = load_checked(args.params)
    except ParamsError as err:
        raise SystemExit(f"gate: {err}") from None
    if not args.metrics.exists():
        raise SystemExit(f"gate: {args.metrics} not found (run the pipeline: make repro)")
    metrics = json.loads(args.metrics.read_text(encoding="utf-8"))[MODEL]
    baseline = baseline_metrics(args.baseline, args.metrics.as_posix())
    results = check(task, params.gate, metrics, baseline)
    print(table(results))
    if baseline is None:
        print(f"\nno {args.metrics} at {args.baseline}: regression gates skipped")
    failed = [r.gate for r in results if r.status == "fail"]
    if failed:
        raise SystemExit(f"\n{len(failed)} gate(s) failed: {'; '.join(failed)}")
    print(f"\nall {sum(r.status == 'pass' for r in results)} checked gates pass")


if __name__ == "__main__":
    main()
