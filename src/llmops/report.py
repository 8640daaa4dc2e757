"""The pull-request report: this change against a baseline git ref, as one markdown file.

Run: make report   (python -m llmops.report --params params.yaml --baseline main --out report.md
                    --eval metrics/eval.json ... : every input path, given by the Makefile)

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
from dataclasses import dataclass
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
from llmops.metrics import load_checked
from llmops.params import ParamsError
from llmops.predictions import Prediction, parse_predictions, read_predictions
from llmops.task import Task

LIMIT = 65_536


@dataclass(frozen=True)
class Inputs:
    """Where the report reads this change's files (and, at the same paths, main's)."""

    eval: Path
    train: Path
    prep: Path
    base: Path
    predictions: Path
    train_curve: Path
    adapter: Path
    prompts: Path

    def committed(self) -> dict[str, Path]:
        """The files main commits to git (the predictions are a DVC output)."""
        names = ("eval", "train", "prep", "base", "train_curve", "adapter")
        return {n: getattr(self, n) for n in names}


def load_json(text: str | None) -> dict | None:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def right(task: Task, record: Prediction) -> bool:
    """Correct = every label output field right (the exact match when there is none)."""
    scores = record.tuned.scores
    if not task.labels:
        return scores.get("exact_match") == 1.0
    return all(scores.get(f"{f.name}_accuracy") == 1.0 for f in task.labels)


def flipped(task: Task, now: list[Prediction], main: list[Prediction]) -> tuple[list, list]:
    """(wrong -> right, right -> wrong) pairs of (main record, this change's record); only
    examples with the same id and the same reference are compared."""
    before = {r.id: r for r in main}
    pairs = [(before[r.id], r) for r in now if r.id in before]
    pairs = [(b, r) for b, r in pairs if b.reference == r.reference]
    fixed = [(b, r) for b, r in pairs if not right(task, b) and right(task, r)]
    broken = [(b, r) for b, r in pairs if right(task, b) and not right(task, r)]
    return fixed, broken


def baseline_predictions(path: Path, ref: str) -> tuple[list[Prediction] | None, str]:
    """main's per-example predictions from the DVC cache or remote, or why not."""
    import dvc.api

    try:
        text = dvc.api.read(path.as_posix(), rev=ref, repo=".")
    except Exception as err:  # dvc raises many kinds: missing rev, no cache, no remote, ...
        return None, (
            f"main's predictions ({path.as_posix()} at `{ref}`) are not in the DVC cache "
            f"or remote ({type(err).__name__}); run `dvc push` on {ref} to enable this section"
        )
    try:
        return parse_predictions(text), ""
    except ValueError as err:
        return None, f"main's predictions at `{ref}` are in another format ({err})"


def build(params_path: Path, ref: str, inputs: Inputs) -> str:
    """The report's markdown, cutting example lists (then the prompt diff) to fit LIMIT."""
    params, task = load_checked(params_path)
    examples = params.report.examples
    now = json.loads(inputs.eval.read_text(encoding="utf-8"))
    paths = inputs.committed()
    old = {k: gate.at_ref(ref, p.as_posix()) for k, p in paths.items()}
    old["params"] = gate.at_ref(ref, params_path.as_posix())
    local = {k: p.read_text(encoding="utf-8") if p.exists() else None for k, p in paths.items()}
    main_eval = load_json(old["eval"])
    results = gate.check(task, params.gate, now["tuned"], (main_eval or {}).get("tuned"))
    if not inputs.predictions.exists():
        raise FileNotFoundError(f"{inputs.predictions} not found (run the pipeline: make repro)")
    predictions = read_predictions(inputs.predictions)
    main_predictions, missing = baseline_predictions(inputs.predictions, ref)
    flips = None if main_predictions is None else flipped(task, predictions, main_predictions)
    curves = (curve(local["train_curve"]), curve(old["train_curve"]))

    def head(prompt: str) -> list[str]:
        return [
            f"## Model report: this change vs `{ref}`",
            "",
            verdict(task, results, now, main_eval),
            "",
            "### Quality gates",
            "",
            gate.table(results),
            "",
            "### Test metrics (fine-tuned model)",
            "",
            metrics_table(task, now, main_eval),
            "",
            mermaid_charts(task, now, main_eval, *curves),
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
        f"`{inputs.predictions.as_posix()}`._",
        "",
    ]
    what = " and ".join(f.name for f in task.labels) or "the whole answer"
    section = FlipSection(flips, missing, examples, what)
    top = head(prompt_diff(ref, [inputs.prompts, Path(params.task.prompt)]))
    for shown in [examples, *range(min(examples, 10) - 1, -1, -1)]:
        text = "\n".join([*top, *section.lines(shown), *tail])
        if len(text) < LIMIT:
            return text
    top = head("_Prompt diff too long for a comment; see the pull request's files._")
    return "\n".join([*top, *section.lines(0), *tail])[: LIMIT - 1]


@dataclass(frozen=True)
class FlipSection:
    """The flipped examples: `what` names the fields that make an answer right."""

    flips: tuple | None
    missing: str
    asked: int
    what: str

    def lines(self, shown: int) -> list[str]:
        """The section with `shown` examples per direction (a note says when fewer)."""
        out = [f"### Examples that flipped ({self.what} right vs not)", ""]
        if self.flips is None:
            return [*out, f"_{self.missing}._", ""]
        fixed, broken = self.flips
        if shown < self.asked:
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--baseline", default="main", help="git ref to compare against")
    parser.add_argument("--out", type=Path, required=True)
    for name in ("eval", "train", "prep", "base", "predictions", "train-curve", "adapter"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="prompt templates folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    inputs = Inputs(args.eval, args.train, args.prep, args.base, args.predictions,
                    args.train_curve, args.adapter, args.prompts)  # fmt: skip
    if not inputs.eval.exists():
        raise SystemExit(f"report: {inputs.eval} not found (run the pipeline: make repro)")
    try:
        text = build(args.params, args.baseline, inputs)
    except (ParamsError, FileNotFoundError) as err:
        raise SystemExit(f"report: {err}") from None
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text):,} characters)")


if __name__ == "__main__":
    main()
