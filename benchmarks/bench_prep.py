"""What PII redaction costs the prep stage: prep with the configured kinds against prep
with none, side by side in this one process.

Run: make bench-prep
     (python -m benchmarks.bench_prep --params params.yaml --raw data/raw \
        --out benchmarks/results/prep.json)

Both runs read, validate, clean, dedupe and split the same raw folder in memory (nothing
is written); only `prep.redact` differs. Runs alternate, `--repeats` of each, and the
median counts. The ratio is the in-memory work's time with redaction over without it (the
stage's wall time adds imports and writing, the same either way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

from llmops.params import load_params
from llmops.stages.prep import prep
from llmops.task import Task


def bench(args: argparse.Namespace) -> dict:
    params = load_params(args.params)
    task = Task.from_params(params.task)
    plain = dataclasses.replace(params.prep, redact=())
    times: dict[str, list[float]] = {"none": [], "redact": []}
    result = None
    for _ in range(args.repeats):
        for name, knobs in (("none", plain), ("redact", params.prep)):
            start = time.perf_counter()
            out = prep(task, knobs, args.raw)
            times[name].append(time.perf_counter() - start)
            result = out if name == "redact" else result
    none, redacted = (statistics.median(times[k]) for k in ("none", "redact"))
    return {
        "rows_in": result.rows_in,
        "kinds": list(params.prep.redact),
        "redactions": dict(result.redactions),
        "seconds_without_redaction": round(none, 4),
        "seconds_with_redaction": round(redacted, 4),
        "ratio": round(redacted / none, 2),
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    found = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(
        f"prep on {found['rows_in']} rows: {found['seconds_without_redaction']:.2f} s without "
        f"redaction, {found['seconds_with_redaction']:.2f} s with {', '.join(found['kinds'])} "
        f"({found['ratio']:.2f}x); redacted {found['redactions']}"
    )


if __name__ == "__main__":
    main()
