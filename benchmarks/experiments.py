"""Tabulate DVC experiments: the params each one changed against its baseline commit, the
test metrics of its fine-tuned model (with the classical floor beside them) and its cost.

Run: make exp-table   (dvc exp show --json | python -m benchmarks.experiments)

An experiment is queued and run with DVC (docs/experiments.md):
    dvc exp run --queue -n r64-ep6 -S train.lora.r=64 -S train.epochs=6
    dvc exp run --run-all --jobs 1
This prints one Markdown row per experiment, baseline first: the changed params, each
label field's accuracy and each text field's ROUGE-L, JSON validity, and the minutes of
pretraining plus training (the stages whose time grows with the recipe; prep and eval add
about half a minute).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

SHOWN = ("json_valid", "_accuracy", "_rouge_l")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def runs(shown: list[dict]) -> Iterator[tuple[str, dict, dict]]:
    """(name, params, metrics) of each commit and experiment in `dvc exp show --json`."""
    for commit in shown:
        if commit.get("rev") == "workspace" or not commit.get("data"):
            continue
        yield commit.get("name") or commit["rev"][:7], *_data(commit["data"])
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("data"):
                    yield rev.get("name") or rev["rev"][:7], *_data(rev["data"])


def _data(data: dict) -> tuple[dict, dict]:
    params = flatten(data["params"]["params.yaml"]["data"])
    metrics = {name.split("/")[-1].removesuffix(".json"): m.get("data", {})
               for name, m in data.get("metrics", {}).items()}  # fmt: skip
    return params, metrics


def table(shown: list[dict]) -> str:
    """The Markdown table, the first commit as the baseline."""
    rows = [r for r in runs(shown) if "eval" in r[2]]
    if not rows:
        return "_No experiments._"
    _, base_params, base_metrics = rows[0]
    names = [m for m in base_metrics["eval"]["tuned"] if m.endswith(SHOWN)]
    floor = base_metrics["eval"].get("classical", {})
    header = ["experiment", "params changed", *names, "pretrain + train min"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(names) + 1)]
    lines.append("| classical floor | (TF-IDF + logistic regression) | "
                 + " | ".join(f"{floor[m]:.3f}" if m in floor else "—" for m in names)
                 + " | |")  # fmt: skip
    for name, params, metrics in rows:
        if "train_seconds" not in metrics.get("train", {}) or "tuned" not in metrics["eval"]:
            continue  # queued, running or failed: no results yet
        changed = [f"{k}={v}" for k, v in params.items() if base_params.get(k) != v]
        tuned = metrics["eval"]["tuned"]
        seconds = metrics["base"].get("pretrain_seconds", 0) + metrics["train"]["train_seconds"]
        cells = [name, ", ".join(changed) or "(baseline)",
                 *(f"{tuned[m]:.3f}" for m in names), f"{seconds / 60:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    print(table(json.load(sys.stdin)))


if __name__ == "__main__":
    main()
