"""The prep stage's costs: what PII redaction costs, and how its memory grows with rows.

Run: make bench-prep
     (python -m benchmarks.bench_prep --params params.yaml --raw data/raw \
        --out benchmarks/results/prep.json [--rows 100000 1000000])

Redaction: both runs read, validate, clean, dedupe and split the same raw folder (nothing
else is written); only `prep.redact` differs. Runs alternate, `--repeats` of each, and the
median counts. The ratio is the in-memory work's time with redaction over without it (the
stage's wall time adds imports and writing, the same either way).

Memory: for each of `--rows` (default 100,000 and 1,000,000) a gzip JSON Lines file of that
many generated rows (distinct messages, the worst case for dedupe, and no relation to any
task's data) is prepared by the stage's own command in a fresh process, outputs written,
and the process's peak resident memory (VmHWM) is read; both sizes run in this one
command. The ratio of the peaks says how memory grows with rows (1.0: not at all).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from llmops.config.params import load_params
from llmops.config.task import Task
from llmops.stages.prep import prep

# The generated task: one text input, one label; prep's knobs otherwise from params.yaml.
TASK = {"prompt": "prompts/none.jinja",
        "inputs": {"text": {"kind": "text", "max_chars": 2000}},
        "outputs": {"label": {"kind": "label", "values": ["a", "b", "c", "d"]}}}  # fmt: skip
WORDS = ("order", "late", "refund", "card", "account", "open", "close", "broken", "screen",
         "price", "box", "delivery", "help", "please", "thanks", "today", "week", "money",
         "app", "login", "error", "again", "new", "old")  # fmt: skip
# Runs the stage's main in a fresh process and prints that process's peak memory (KB).
PEAK = """
import re, sys
from llmops.stages.prep import main
try:
    main(sys.argv[1:])
finally:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


def redaction_cost(args: argparse.Namespace) -> dict:
    params = load_params(args.params)
    task = Task.from_params(params.task)
    plain = dataclasses.replace(params.prep, redact=())
    times: dict[str, list[float]] = {"none": [], "redact": []}
    rows_in, redactions = 0, {}
    for _ in range(args.repeats):
        for name, knobs in (("none", plain), ("redact", params.prep)):
            start = time.perf_counter()
            with prep(task, knobs, args.raw) as out:
                times[name].append(time.perf_counter() - start)
                if name == "redact":
                    rows_in = out.rows_in
                    redactions = {k: v for k, v in _found(out).items() if v}
    none, redacted = (statistics.median(times[k]) for k in ("none", "redact"))
    return {
        "rows_in": rows_in,
        "kinds": list(params.prep.redact),
        "redactions": redactions,
        "seconds_without_redaction": round(none, 4),
        "seconds_with_redaction": round(redacted, 4),
        "ratio": round(redacted / none, 2),
        "repeats": args.repeats,
    }


def _found(result) -> dict[str, int]:
    total: dict[str, int] = {}
    for _, _, found in result.store.kept_stats():
        for kind, n in found.items():
            total[kind] = total.get(kind, 0) + n
    return dict(sorted(total.items()))


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    """`n` distinct generated rows as gzip JSON Lines."""
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
            row = {"text": f"{words} #{i}", "label": "abcd"[i % 4]}
            f.write(json.dumps(row) + "\n")


def peak_memory(params: Path, rows: list[int]) -> dict:
    """Peak resident memory of the prep stage on each number of generated rows."""
    found = {}
    for n in rows:
        with tempfile.TemporaryDirectory(prefix="bench-prep-") as scratch:
            root = Path(scratch)
            config = yaml.safe_load(params.read_text(encoding="utf-8"))
            config["task"] = TASK
            config["prep"] |= {"columns": {}, "id_column": None, "split_column": None,
                               "pin_files": {}, "test_fraction": 0.1}  # fmt: skip
            (root / "params.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            (root / "raw").mkdir()
            write_rows(root / "raw" / "rows.jsonl.gz", n)
            argv = ["--params", str(root / "params.yaml"), "--raw", str(root / "raw")]
            for name in ("out", "quarantine", "report"):
                argv += [f"--{name}", str(root / name)]
            argv += ["--metrics", str(root / "metrics.json")]
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", PEAK, *argv], check=True,
                                  capture_output=True, text=True)  # fmt: skip
            seconds = time.perf_counter() - start
            metrics = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
            found[str(n)] = {
                "rows_in": metrics["rows_in"],
                "rows_kept": metrics["rows_kept"],
                "peak_mb": round(int(done.stdout.split()[-1]) / 1024, 1),
                "seconds": round(seconds, 1),
            }
    sizes = [str(n) for n in rows]
    ratio = found[sizes[-1]]["peak_mb"] / found[sizes[0]]["peak_mb"]
    return {"runs": found, "rows_ratio": rows[-1] / rows[0], "peak_ratio": round(ratio, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    found = redaction_cost(args)
    found["memory"] = peak_memory(args.params, sorted(args.rows))
    found["machine"] = f"{platform.machine()}, {platform.python_version()}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(
        f"prep on {found['rows_in']} rows: {found['seconds_without_redaction']:.2f} s without "
        f"redaction, {found['seconds_with_redaction']:.2f} s with {', '.join(found['kinds'])} "
        f"({found['ratio']:.2f}x); redacted {found['redactions']}"
    )
    for n, run in found["memory"]["runs"].items():
        print(f"prep on {int(n):,} generated rows: peak {run['peak_mb']} MB, {run['seconds']} s")
    memory = found["memory"]
    print(f"{memory['rows_ratio']:.0f}x the rows, {memory['peak_ratio']:.2f}x the peak memory")


if __name__ == "__main__":
    main()
