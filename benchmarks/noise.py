"""How much the test metrics move when nothing meaningful changes: the noise the gates face.

Run: make noise
     (python -m benchmarks.noise --params params.yaml --data data/prepared \
        --base models/base --out benchmarks/results/noise.json)
     make noise POOL=benchmarks/results/noise.json   # add these runs to the committed ones

Reruns the train and eval stages on the current params and base model, as they are and
under perturbations that change nothing a reviewer cares about: other training seeds
(`train.seed`, which reorders batches and re-initialises the adapter) and another CPU
thread count (OMP_NUM_THREADS=1, which changes how float sums are rounded, as another CPU
model does). Each run's outputs go to a temporary folder; the repository is not touched.
Writes each metric's values, range and standard deviation, and, for each perturbed run
against the unperturbed one, which metrics a paired test over the test examples alone
(llmops.evaluate.stats) calls significant. The gates and the report read the standard deviations
(`--noise`) and add them to their intervals: committed with the params they were measured
on, they stand for the training noise until the recipe changes (then run it again).

Another CPU model moves the metrics as a seed does, and one machine's three or four runs
are a small sample: `--pool` adds the runs of an earlier measurement of the same params,
made on another machine, to this one's spread (its runs keep a label naming the commit it
was measured at), so the committed standard deviations cover both machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from llmops.config.params import merged_raw, task_file
from llmops.config.paramsfile import ParamsError, read_text
from llmops.config.tracking import git_commit
from llmops.evaluate.metrics import load_checked
from llmops.evaluate.predictions import parse_examples
from llmops.evaluate.stats import comparable, compare, pair


def run(args, name: str, overrides: dict, env: dict, scratch: Path) -> dict:
    """Train and evaluate once with `overrides` applied to params; metrics and records."""
    folder = scratch / name.replace(" ", "-")
    folder.mkdir()
    # As load_params reads them: params.yaml with task.yaml's declaration merged in.
    declared = task_file(args.params)
    task_text = read_text(declared) if declared.is_file() else None
    raw, _ = merged_raw(read_text(args.params), str(args.params), task_text, str(declared))
    for section, values in overrides.items():
        raw[section] |= values
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", **env}
    common = ["--params", str(params), "--data", str(args.data), "--base", str(args.base)]
    start = time.perf_counter()
    stage(["train", *common, "--prompt", raw["task"]["prompt"], "--out", str(folder / "adapter"),
           "--checkpoints", str(folder / "ck"), "--metrics", str(folder / "train.json"),
           "--plots", str(folder / "curves")], env)  # fmt: skip
    stage(["eval", *common, "--adapter", str(folder / "adapter"),
           "--metrics", str(folder / "eval.json"), "--examples", str(folder / "examples.csv"),
           "--plots", str(folder / "plots"), "--predictions", str(folder / "p.jsonl")],
          env)  # fmt: skip
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return {
        "metrics": json.loads((folder / "eval.json").read_text())["tuned"],
        "examples": parse_examples((folder / "examples.csv").read_text()),
    }


def stage(argv: list[str], env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", f"llmops.stages.{argv[0]}", *argv[1:]],
                          env=env, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{done.stderr[-3000:]}")


def spread_of(values: list[float]) -> dict:
    return {"values": values, "range": max(values) - min(values), "std": statistics.stdev(values)}


def bench(args: argparse.Namespace) -> dict:
    params, task = load_checked(args.params)
    perturbations = {"as is": ({}, {})}
    for seed in args.seeds:
        perturbations[f"train.seed {seed}"] = ({"train": {"seed": seed}}, {})
    perturbations["1 thread"] = ({}, {"OMP_NUM_THREADS": "1"})
    with tempfile.TemporaryDirectory() as scratch:
        runs = {n: run(args, n, o, e, Path(scratch)) for n, (o, e) in perturbations.items()}
    metrics = list(runs["as is"]["metrics"])
    spread = {m: spread_of([r["metrics"][m] for r in runs.values()]) for m in metrics}
    significant = {}
    for name, r in runs.items():
        if name != "as is":
            pairs = pair(runs["as is"]["examples"], r["examples"])
            found = [compare(m, pairs, task, params.gate.confidence) for m in comparable(task)]
            significant[name] = [c.metric for c in found if c and c.significant]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "commit": git_commit(),
        "runs": list(runs),
        "test_examples": len(runs["as is"]["examples"]),
        "spread": spread,
        "significant_vs_as_is": significant,
    }


def load_measurement(path: Path) -> dict:
    """A noise.json written by this module; SystemExit naming the file and what is wrong."""
    try:
        found = json.loads(read_text(path))
    except ParamsError as err:  # missing, unreadable, not UTF-8: the message names the file
        raise SystemExit(str(err)) from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}: not JSON ({err})") from None
    missing = [k for k in ("runs", "spread", "test_examples") if not isinstance(found, dict)
               or k not in found]  # fmt: skip
    if missing:
        raise SystemExit(f"{path}: no {', '.join(missing)}; expected a file `make noise` wrote")
    return found


def pool(result: dict, earlier: dict, source: str) -> dict:
    """`result` with the runs of `earlier` (read from `source`) added to its spread."""
    if earlier["test_examples"] != result["test_examples"]:
        raise SystemExit(f"{source}: measured on {earlier['test_examples']} test examples, "
                         f"this run on {result['test_examples']}; pool runs of the same test "
                         "split")  # fmt: skip
    spread = earlier["spread"]
    missing = [m for m in result["spread"] if m not in spread]
    if missing:
        raise SystemExit(f"{source}: no values for {', '.join(missing)}; pool a measurement "
                         "of the same task")  # fmt: skip
    where = f" @ {str(earlier.get('commit', 'earlier'))[:7]}"

    def label(run: str) -> str:  # a run pooled before keeps the commit it names
        return run if " @ " in run else run + where

    merged = {m: spread_of(mine["values"] + spread[m]["values"])
              for m, mine in result["spread"].items()}  # fmt: skip
    earlier_found = earlier.get("significant_vs_as_is", {})
    significant = result["significant_vs_as_is"] | {label(n): f for n, f in earlier_found.items()}
    machines = [result["machine"], *earlier.get("machines", [earlier.get("machine")])]
    return {**result, "machines": machines, "runs": result["runs"] + [*map(label, earlier["runs"])],
            "spread": merged, "significant_vs_as_is": significant}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    for name in ("data", "base", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="train.seed values")
    parser.add_argument(
        "--pool", type=Path, help="an earlier noise.json whose runs join the spread"
    )
    args = parser.parse_args(argv)
    earlier = load_measurement(args.pool) if args.pool else None  # checked before the runs
    result = bench(args)
    if earlier is not None:
        result = pool(result, earlier, str(args.pool))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"| metric | {' | '.join(result['runs'])} | range | std |")
    print(f"|---|{'---:|' * (len(result['runs']) + 2)}")
    for m, s in result["spread"].items():
        values = " | ".join(f"{v:.4f}" for v in s["values"])
        print(f"| {m} | {values} | {s['range']:.4f} | {s['std']:.4f} |")
    for name, found in result["significant_vs_as_is"].items():
        print(f"{name} vs as is: significant at the gate's confidence: {found or 'none'}")


if __name__ == "__main__":
    main()
