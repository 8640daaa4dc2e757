"""The pull-request report: this change against a baseline git ref, as one markdown file.

Run: make report   (python -m llmops.report.pullrequest --params params.yaml --baseline main
                    --out report.md --eval metrics/eval.json ... : every input path, given
                    by the Makefile)

It answers "better or worse than main, where, and why, and is it more than noise": a
verdict and the gates, metrics of main / this change / the classical floor / the base model
with each change's interval from a paired test over the test examples (llmops.evaluate.stats; only
a change whose interval excludes zero is coloured), the params and prompt diffs, data
changes, the test examples that flipped, charts (Mermaid, rendered by GitHub with no image
host; PNG copies stay in reports/ for artefact upload), training cost, the MLflow run and
the commit. Everything about main comes from what main committed (`git show main:...`,
its per-example record included); main's generated texts come from the DVC cache or remote
when they are there. Nothing of main's pipeline is re-run. What cannot be found is said,
not guessed; an input that is there but cannot be read (not UTF-8, not the shape its stage
writes, here or committed at the baseline), or a baseline ref that is not a valid name or
that git does not know (checked as `make gate` checks it), stops the report with one line
naming it.
The text stays under GitHub's 65,536-character comment limit: the example lists are cut
first, and the report says so.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from llmops.config.params import ParamsError, task_file
from llmops.evaluate import baseline, gate
from llmops.evaluate.metrics import InputError, eval_metrics, load_checked
from llmops.evaluate.predictions import parse_predictions, read_predictions, read_record
from llmops.evaluate.stats import comparable, training_noise
from llmops.report.escape import escape
from llmops.report.flips import LIMIT, FlipSection, flipped
from llmops.report.markdown import (
    cost,
    curve,
    data_changes,
    majority_note,
    mermaid_charts,
    metrics_table,
    noise_note,
    params_diff,
    prompt_diff,
    recall_lines,
    scorers_note,
    verdict,
)


@dataclass(frozen=True)
class Inputs:
    """Where the report reads this change's files (and, at the same paths, main's)."""

    eval: Path
    examples: Path
    train: Path
    prep: Path
    base: Path
    predictions: Path
    train_curve: Path
    adapter: Path
    prompts: Path
    noise: Path | None = None  # make noise's measurement of the training noise, if any

    def committed(self) -> dict[str, Path]:
        """The files main commits to git (the predictions are a DVC output)."""
        names = ("eval", "examples", "train", "prep", "base", "train_curve", "adapter")
        return {n: getattr(self, n) for n in names}


def load_json(text: str | None) -> dict | None:
    """A JSON object's data, or None (no text, or not a JSON object: check_inputs says so
    before the report is built)."""
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def check_inputs(ref: str, inputs: Inputs) -> None:
    """Stop, naming the file, on an input the report cannot use: this change's metrics and
    predictions (required), its other files when present, and each file committed at `ref`
    (a file the ref does not have is said in the report, not an error)."""
    eval_metrics(gate.read_input(inputs.eval), inputs.eval.as_posix())
    predictions = gate.read_input(inputs.predictions)
    try:
        parse_predictions(predictions)
    except ValueError as err:
        raise InputError(f"{inputs.predictions}: {err}") from None
    for name, path in inputs.committed().items():
        local = gate.read_input(path) if path.exists() else None
        for text, where in (
            (local, path.as_posix()),
            (baseline.at_ref(ref, path.as_posix()), f"{path.as_posix()} at {ref}"),
        ):
            if text is not None:
                check_committed(name, text, where)


def check_committed(name: str, text: str, where: str) -> None:
    """One of the files main commits (Inputs.committed), read the way the report reads it."""
    if name == "eval":
        eval_metrics(text, where)
    elif name == "examples":
        read_record(text, where)
    elif name == "train_curve":
        try:
            curve(text)
        except ValueError as err:
            raise InputError(f"{where}: not a step,loss curve ({err})") from None
    elif load_json(text) is None:
        raise InputError(f"{where}: expected a JSON object")


def baseline_outputs(path: Path, ref: str) -> dict[str, str] | None:
    """main's generated texts by example id, from the DVC cache or remote; None if absent."""
    import dvc.api

    try:
        text = dvc.api.read(path.as_posix(), rev=ref, repo=".")
        return {r.id: r.tuned.output for r in parse_predictions(text)}
    except Exception:  # dvc raises many kinds (no rev, no cache, no remote); old formats too
        return None


def build(params_path: Path, ref: str, inputs: Inputs) -> str:
    """The report's markdown, cutting example lists (then the prompt diff) to fit LIMIT."""
    params, task = load_checked(params_path)
    now = json.loads(inputs.eval.read_text(encoding="utf-8"))
    paths = inputs.committed()
    old = {k: baseline.at_ref(ref, p.as_posix()) for k, p in paths.items()}
    old["params"] = baseline.at_ref(ref, params_path.as_posix())
    old["task"] = baseline.at_ref(ref, task_file(params_path).as_posix())
    local = {k: p.read_text(encoding="utf-8") if p.exists() else None for k, p in paths.items()}
    if not inputs.predictions.exists():
        raise FileNotFoundError(f"{inputs.predictions} not found (run the pipeline: make repro)")
    pairs, missing = gate.paired_records(old["examples"], local["examples"])
    confidence, noise = params.gate.confidence, training_noise(inputs.noise)
    changes = gate.comparisons(task, pairs, comparable(task), confidence, noise)
    main_eval = load_json(old["eval"])
    results = gate.check(task, params.gate, now["tuned"], (main_eval or {}).get("tuned"), changes)
    current = {r.id: r for r in read_predictions(inputs.predictions)}
    outputs = baseline_outputs(inputs.predictions, ref) if pairs else None
    note = (
        ""
        if outputs or pairs is None
        else (
            f"main's outputs are not in the DVC cache or remote, so its labels come from its "
            f"record; `dvc push` on {ref} adds its text."
        )
    )
    flips = flipped(task, pairs) if pairs else None
    # `missing` may quote the record's own columns: untrusted, so escaped like any cell.
    section = FlipSection(
        task, flips, escape(missing) if missing else note, current, outputs, params.report.examples
    )
    curves = (curve(local["train_curve"]), curve(old["train_curve"]))

    def head(prompt: str) -> list[str]:
        return [
            f"## Model report: this change vs `{ref}`",
            "",
            verdict(task, results, now, main_eval, changes),
            "",
            "### Quality gates",
            "",
            gate.table(results),
            "",
            "### Test metrics (fine-tuned model)",
            "",
            metrics_table(task, now, main_eval, changes),
            "",
            noise_note(task, changes, len(current), params.gate.confidence),
            "",
            scorers_note(task, current.values()),
            majority_note(task, now, len(current), confidence),
            recall_lines(task, current.values()),
            mermaid_charts(task, now, main_eval, *curves),
            "",
            "### Params changed",
            "",
            params_diff(params_path, old.get("params"), old.get("task")),
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
    examples = params.report.examples
    top = head(prompt_diff(ref, [inputs.prompts, Path(params.task.prompt)]))
    for shown in [examples, *range(min(examples, 10) - 1, -1, -1)]:
        text = "\n".join([*top, *section.lines(shown), *tail])
        if len(text) < LIMIT:
            return text
    top = head("_Prompt diff too long for a comment; see the pull request's files._")
    return "\n".join([*top, *section.lines(0), *tail])[: LIMIT - 1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--baseline", default="main", help="git ref to compare against")
    parser.add_argument("--out", type=Path, required=True)
    names = ("eval", "examples", "train", "prep", "base", "predictions", "train-curve", "adapter")
    for name in names:
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="prompt templates folder")
    parser.add_argument("--noise", type=Path, help="training noise (make noise), if measured")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    inputs = Inputs(
        args.eval,
        args.examples,
        args.train,
        args.prep,
        args.base,
        args.predictions,
        args.train_curve,
        args.adapter,
        args.prompts,
        args.noise,
    )
    try:
        baseline.resolve(args.baseline)  # as make gate checks it: a valid name git knows
        check_inputs(args.baseline, inputs)
        text = build(args.params, args.baseline, inputs)
    except (ParamsError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"report: {err}") from None
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise SystemExit(f"report: cannot write {args.out} ({err.strerror or err})") from None
    print(f"wrote {args.out} ({len(text):,} characters)")


if __name__ == "__main__":
    main()
