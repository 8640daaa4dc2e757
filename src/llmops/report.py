"""The pull-request report: this change against a baseline git ref, as one markdown file.

Run: make report   (python -m llmops.report --params params.yaml --baseline main --out report.md)

It answers "better or worse than main, where, and why": a verdict and the gates, metrics
of main / this change / the base model with deltas, the params and prompt diffs, data
changes, the test examples that flipped, charts (Mermaid, rendered by GitHub with no image
host; PNG copies stay in reports/ for artefact upload), training cost, the MLflow run and
the commit. Everything about main comes from what main committed (`git show main:...`)
and, for its per-example predictions, from the DVC cache or remote (`dvc.api.read` at the
ref); nothing of main's pipeline is re-run. What cannot be found is said, not guessed.
The text stays under GitHub's 65,536-character comment limit: the example lists are cut
first, and the report says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmops import gate
from llmops.markdown import (
    cost,
    curve,
    data_changes,
    examples_table,
    mermaid_charts,
    metrics_table,
    params_diff,
    prompt_diff,
    verdict,
)
from llmops.params import ParamsError, load_params

LIMIT = 65_536
PATHS = {
    "params": "params.yaml",
    "eval": "metrics/eval.json",
    "train": "metrics/train.json",
    "prep": "metrics/prep.json",
    "base": "metrics/base.json",
    "predictions": "data/eval/predictions.jsonl",
    "train_curve": "reports/train/train_loss.csv",
    "adapter": "models/adapter/training.json",
}


def load_json(text: str | None) -> dict | None:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def right(record: dict) -> bool:
    """Correct = category and priority both right (the classification half of the task)."""
    s = record["tuned"]["scores"]
    return s["category"] == 1.0 and s["priority"] == 1.0


def flipped(now: list[dict], main: list[dict]) -> tuple[list, list]:
    """(wrong -> right, right -> wrong) pairs of (main record, this change's record)."""
    before = {r["id"]: r for r in main}
    pairs = [(before[r["id"]], r) for r in now if r["id"] in before]
    fixed = [(b, r) for b, r in pairs if not right(b) and right(r)]
    broken = [(b, r) for b, r in pairs if right(b) and not right(r)]
    return fixed, broken


def baseline_predictions(ref: str) -> tuple[list[dict] | None, str]:
    """main's per-example predictions from the DVC cache or remote, or why not."""
    import dvc.api

    try:
        text = dvc.api.read(PATHS["predictions"], rev=ref, repo=".")
    except Exception as err:  # dvc raises many kinds: missing rev, no cache, no remote, ...
        return None, (
            f"main's predictions ({PATHS['predictions']} at `{ref}`) are not in the DVC cache "
            f"or remote ({type(err).__name__}); run `dvc push` on {ref} to enable this section"
        )
    return [json.loads(line) for line in text.splitlines() if line.strip()], ""


def build(params_path: Path, ref: str, examples: int) -> str:
    """The report's markdown, cutting example lists (then the prompt diff) to fit LIMIT."""
    params = load_params(params_path)
    now = json.loads(Path(PATHS["eval"]).read_text(encoding="utf-8"))
    old = {k: gate.at_ref(ref, p) for k, p in PATHS.items() if k != "predictions"}
    local = {
        k: Path(p).read_text(encoding="utf-8") if Path(p).exists() else None
        for k, p in PATHS.items()
        if k != "predictions"
    }
    main_eval = load_json(old["eval"])
    results = gate.check(params.eval.gates, now["tuned"], (main_eval or {}).get("tuned"))
    predictions = [json.loads(x) for x in Path(PATHS["predictions"]).read_text().splitlines()]
    main_predictions, missing = baseline_predictions(ref)
    flips = None if main_predictions is None else flipped(predictions, main_predictions)

    def head(prompt: str) -> list[str]:
        return [
            f"## Model report: this change vs `{ref}`",
            "",
            verdict(results, now, main_eval),
            "",
            "### Quality gates",
            "",
            gate.table(results),
            "",
            "### Test metrics (fine-tuned model)",
            "",
            metrics_table(now, main_eval),
            "",
            mermaid_charts(now, main_eval, curve(local["train_curve"]), curve(old["train_curve"])),
            "",
            "### Params changed",
            "",
            params_diff(params_path, old.get("params")),
            "",
            "### Prompt template",
            "",
            prompt,
            "",
            "### Data",
            "",
            data_changes(load_json(local["prep"]), load_json(old["prep"])),
            "",
        ]

    tail = [
        "### Cost and provenance",
        "",
        cost(load_json(local["train"]), load_json(local["base"]), now, load_json(local["adapter"])),
        "",
        "_PNG charts: `reports/eval/*.png`, `reports/prep/*.png`; per-example outputs: "
        f"`{PATHS['predictions']}`._",
        "",
    ]
    top = head(prompt_diff(ref))
    for shown in [examples, *range(min(examples, 10) - 1, -1, -1)]:
        text = "\n".join([*top, *flipped_section(flips, missing, shown, examples), *tail])
        if len(text) < LIMIT:
            return text
    top = head("_Prompt diff too long for a comment; see the pull request's files._")
    return "\n".join([*top, *flipped_section(flips, missing, 0, examples), *tail])[: LIMIT - 1]


def flipped_section(flips: tuple | None, missing: str, shown: int, asked: int) -> list[str]:
    """The flipped examples, `shown` per direction (a note says when fewer than `asked`)."""
    out = ["### Examples that flipped (category and priority both right vs not)", ""]
    if flips is None:
        return [*out, f"_{missing}._", ""]
    fixed, broken = flips
    if shown < asked:
        out += [
            f"_Lists cut to {shown} per direction to stay under GitHub's "
            f"{LIMIT:,}-character comment limit._",
            "",
        ]
    return [
        *out,
        f"**Wrong → right: {len(fixed)}**",
        "",
        examples_table(fixed, shown),
        "",
        f"**Right → wrong: {len(broken)}**",
        "",
        examples_table(broken, shown),
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--baseline", default="main", help="git ref to compare against")
    parser.add_argument("--out", type=Path, default=Path("report.md"))
    args = parser.parse_args(argv)
    if not Path(PATHS["eval"]).exists():
        raise SystemExit(f"report: {PATHS['eval']} not found (run the pipeline: make repro)")
    try:
        examples = load_params(args.params).eval.report_examples
        text = build(args.params, args.baseline, examples)
    except ParamsError as err:
        raise SystemExit(f"report: {err}") from None
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text):,} characters)")


if __name__ == "__main__":
    main()
