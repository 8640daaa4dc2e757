"""Markdown pieces of the pull-request report (llmops.report.pullrequest): cells safe for untrusted
text, number formats, the tables, the verdict and the Mermaid charts. Which metrics are
shown, and which way is better, comes from the task (llmops.evaluate.metrics)."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable
from pathlib import Path
from statistics import NormalDist

from llmops.config.params import merged_raw, task_file
from llmops.config.paramsfile import ParamsError, read_text
from llmops.config.task import Task
from llmops.config.tracking import flatten, git_commit
from llmops.evaluate.metrics import metric_names, rates, signatures
from llmops.evaluate.predictions import Prediction
from llmops.evaluate.stats import Change
from llmops.report.escape import code_block, escape


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"


def change_cell(change: Change | None, new: float | None, old: float | None) -> str:
    """Δ with its interval; coloured only when the interval excludes zero."""
    if change is None:  # no per-example scores: the plain difference, untested
        if new is None or old is None:
            return "n/a"
        return "±0" if abs(new - old) < 5e-5 else f"{new - old:+.4f} (untested)"
    if change.low == change.high == change.delta == 0:
        return "±0"
    head = "±0" if abs(change.delta) < 5e-5 else f"{change.delta:+.4f}"
    interval = f"{head} [{change.low:+.4f}, {change.high:+.4f}]"
    if not change.significant:
        return f"{interval} ≈ noise"
    return f"{interval} {'🔴' if change.worse else '🟢'}"


def metrics_table(task: Task, now: dict, main: dict | None, changes: dict[str, Change]) -> str:
    """main / this change / Δ with interval / classical floor / majority class (with label
    fields) / base model, per metric."""
    always = now.get("majority")
    lines = [
        "| metric | main | this change | Δ [95% interval] | classical "
        + ("| majority class " if always is not None else "")
        + "| base model |",
        "|---|---:|---:|---|---:|" + ("---:|" if always is not None else "") + "---:|",
    ]
    old = (main or {}).get("tuned", {})
    floor = now.get("classical", {})
    for m in metric_names(task):
        new = now["tuned"].get(m)
        cell = change_cell(changes.get(m), new, old.get(m))
        cells = [fmt(old.get(m)), fmt(new), cell, fmt(floor[m]) if m in floor else "—"]
        if always is not None:
            cells.append(fmt(always[m]) if m in always else "—")
        cells.append(fmt(now["base"].get(m)))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def majority_note(task: Task, now: dict, examples: int, confidence: float) -> str:
    """A plain warning for each label field whose accuracy is not clearly above always
    answering its most frequent training label: within noise of it (the difference of the
    two accuracies inside its `confidence` interval, normal approximation over the test
    examples), or below it."""
    always = now.get("majority") or {}
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    lines = []
    for f in task.labels:
        ours, floor = now["tuned"].get(f"{f.name}_accuracy"), always.get(f"{f.name}_accuracy")
        if ours is None or floor is None or examples < 1:
            continue
        half = z * math.sqrt((ours * (1 - ours) + floor * (1 - floor)) / examples)
        if ours - floor > half:
            continue
        f1, floor_f1 = now["tuned"].get(f"{f.name}_macro_f1"), always[f"{f.name}_macro_f1"]
        verdict = (
            "worse than always answering the most frequent label"
            if floor - ours > half
            else "no better than always answering the most frequent label"
        )
        lines.append(
            f"⚠️ **{f.name}: {verdict}.** Accuracy {ours:.3f} against {floor:.3f} for the "
            f"majority class (the difference's {confidence:.0%} interval is ±{half:.3f} over "
            f"{examples} examples); macro-F1 {fmt(f1)} against {floor_f1:.3f}."
        )
    return "".join(line + "\n\n" for line in lines)


RECALLS_SHOWN = 12  # labels listed per field, lowest recall first


def recall_lines(task: Task, records: Iterable[Prediction]) -> str:
    """Per label field, the fine-tuned model's recall per label (lowest first): a model that
    collapses onto a few labels shows zeros here."""
    records = list(records)
    out = []
    for f in task.labels:
        hits: dict[str, list[int]] = {}
        for r in records:
            truth = r.reference.get(f.name)
            hits.setdefault(truth, []).append(int(r.tuned.parsed.get(f.name) == truth))
        if not hits:
            continue
        recall = sorted((sum(h) / len(h), label) for label, h in hits.items())
        listed = recall[:RECALLS_SHOWN]
        shown = " · ".join(f"{escape(str(label))} {value:.2f}" for value, label in listed)
        more = len(recall) - RECALLS_SHOWN
        zero = sum(1 for value, _ in recall if value == 0)
        tail = f" · … {more} more, up to {recall[-1][0]:.2f}" if more > 0 else ""
        zeros = f"; {zero} of {len(recall)} labels never recalled" if zero else ""
        out.append(f"_{f.name} recall per label (fine-tuned, lowest first): {shown}{tail}{zeros}._")
    return "".join(line + "\n\n" for line in out)


def scorers_note(task: Task, records: Iterable[Prediction] = ()) -> str:
    """For a task with text fields: how they were scored (blank line included); else "".
    `records`: this change's predictions (whether some input has several references)."""
    if not task.texts:
        return ""
    signed = signatures(any(r.references for r in records))
    return (
        f"_Text fields: every answer against all references of its input; "
        f"BLEU `{signed['bleu']}`; chrF `{signed['chrf']}`; ROUGE-L `{signed['rouge_l']}`._\n"
    )


def noise_note(task: Task, changes: dict[str, Change], examples: int, confidence: float) -> str:
    """How many examples were paired, and the smallest change they can tell from noise."""
    lead = changes.get(headline(task))
    if lead is None:
        return (
            f"_{examples} test examples; no per-example record at the baseline to pair with, "
            "so the deltas carry no interval (untested)._"
        )
    half = (lead.high - lead.low) / 2
    measured = [c.metric for c in changes.values() if c.run_std]
    training = (
        f" plus the training noise `make noise` measured ({len(measured)} metrics)"
        if measured
        else "; training noise not measured (`make noise`), so a retrain alone may show up"
    )
    return (
        f"_{lead.n} of {examples} test examples paired with the baseline. Intervals: "
        f"{confidence:.0%}, paired bootstrap over the examples{training}; only a change whose "
        f"interval excludes zero is coloured. Here the interval of {lead.metric} spans about "
        f"±{half:.3f}: a smaller change cannot be told from noise. Classical: TF-IDF + "
        "logistic regression per label field (no counterpart for text fields, JSON validity "
        "or loss: —)._"
    )


def params_diff(now: Path, main_text: str | None, main_task: str | None = None) -> str:
    """The params and task declaration keys that differ from the baseline's (params.yaml
    with task.yaml merged in, on each side: a task moved from one file to the other is no
    change)."""
    if main_text is None:
        return "_No params.yaml at the baseline._"
    declared = task_file(now)
    try:  # read as load_params reads them, so 3e-4 is a number on both sides
        task_text = read_text(declared) if declared.is_file() else None
        new, _ = merged_raw(read_text(now), now.as_posix(), task_text, declared.as_posix())
        old, _ = merged_raw(
            main_text,
            f"{now.as_posix()} at the baseline",
            main_task,
            f"{declared.as_posix()} at the baseline",
        )
    except ParamsError as err:
        return f"_Params not compared: {escape(str(err))}_"
    if not isinstance(new, dict) or not isinstance(old, dict):
        return "_Params not compared: a params file is not a mapping of sections._"
    new, old = flatten(new), flatten(old)
    keys = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
    if not keys:
        return "_No params changed._"
    rows = [
        f"| {escape(k)} | {escape(old.get(k, '(absent)'))} | {escape(new.get(k, '(absent)'))} |"
        for k in keys
    ]
    return "\n".join(["| param | main | this change |", "|---|---|---|", *rows])


def prompt_diff(ref: str, paths: list[Path]) -> str:
    """The git diff of the prompt templates (a folder, the task's template) against `ref`."""
    done = subprocess.run(
        ["git", "diff", "--no-color", ref, "--", *dict.fromkeys(p.as_posix() for p in paths)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"_Cannot diff prompts against {ref}._"
    if not done.stdout.strip():
        return "_Prompt templates unchanged._"
    return code_block(done.stdout, "diff")


def data_changes(now: dict | None, main: dict | None) -> str:
    if now is None:
        return "_No data metrics (metrics/prep.json)._"
    old = main or {}
    lines = ["| rows | main | this change | Δ |", "|---|---:|---:|---:|"]
    pairs = [(f"{s} split", now["split"].get(s), old.get("split", {}).get(s)) for s in now["split"]]
    if now.get("inputs", now["split"]) != now["split"]:  # inputs with several references
        pairs += [
            (f"{s} inputs", n, old.get("inputs", {}).get(s)) for s, n in now["inputs"].items()
        ]
    pairs += [
        ("rejected: " + r, n, old.get("rejected", {}).get(r)) for r, n in now["rejected"].items()
    ]
    pairs += [("raw rows in", now.get("rows_in"), old.get("rows_in"))]
    for name, new, prev in pairs:
        change = (
            "n/a" if prev is None or new is None else f"{new - prev:+d}" if new != prev else "±0"
        )
        lines.append(f"| {name} | {prev if prev is not None else 'n/a'} | {new} | {change} |")
    return "\n".join(lines)


def curve(text: str | None) -> list[tuple[int, float]]:
    if not text:
        return []
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    return [(int(s), float(v)) for s, v in rows]


def mermaid_charts(task: Task, now: dict, main: dict | None, train_now, train_main) -> str:
    """Metric bars (this change as bars, main as a line) and training loss curves."""
    metrics = rates(task)
    bars = ", ".join(f"{now['tuned'][m]:.3f}" for m in metrics)
    parts = [
        "```mermaid",
        "xychart-beta",
        '  title "Test metrics: this change (bars), main (line)"',
        f"  x-axis [{', '.join(m.replace('_', ' ') for m in metrics)}]",
        '  y-axis "score" 0 --> 1',
        f"  bar [{bars}]",
    ]
    if main and "tuned" in main:
        values = ", ".join(f"{main['tuned'].get(m, 0):.3f}" for m in metrics)
        parts.append(f"  line [{values}]")
    parts.append("```")
    if train_now:
        step = max(1, len(train_now) // 20)
        points = train_now[::step]
        old = dict(train_main)
        top = max(v for _, v in [*train_now, *train_main])
        parts += [
            "",
            "```mermaid",
            "xychart-beta",
            '  title "Training loss per step (first line: this change; second: main)"',
            f"  x-axis [{', '.join(str(s) for s, _ in points)}]",
            f'  y-axis "loss" 0 --> {top:.2f}',
            f"  line [{', '.join(f'{v:.4f}' for _, v in points)}]",
        ]
        if all(s in old for s, _ in points):
            parts.append(f"  line [{', '.join(f'{old[s]:.4f}' for s, _ in points)}]")
        parts.append("```")
    return "\n".join(parts)


def headline(task: Task) -> str:
    """The metric the verdict quotes: the first label field's accuracy, else the first
    text field's ROUGE-L."""
    if task.labels:
        return f"{task.labels[0].name}_accuracy"
    return f"{task.texts[0].name}_rouge_l" if task.texts else "json_valid"


def verdict(
    task: Task, results: list, now: dict, main: dict | None, changes: dict[str, Change]
) -> str:
    failed = [r.gate for r in results if r.status == "fail"]
    skipped = sum(r.status == "skipped" for r in results)
    key = headline(task)
    change = ""
    if main and "tuned" in main:
        value, old = now["tuned"][key], main["tuned"].get(key)
        cell = change_cell(changes.get(key), value, old)
        change = f"; {key} {value:.4f} ({cell} vs main)"
    significant = [c.metric for c in changes.values() if c.significant and c.worse]
    worse = f"; significantly worse: {', '.join(significant)}" if significant else ""
    if failed:
        return (
            f"❌ **{len(failed)} of {len(results)} gates fail** ({'; '.join(failed)}){change}"
            f"{worse}."
        )
    note = f", {skipped} skipped (no baseline)" if skipped else ""
    return f"✅ **All checked gates pass**{note}{change}{worse}."


STOPS = {
    "epochs": "every epoch done",
    "token_budget": "`train.token_budget` spent",
    "max_steps": "`train.max_steps` reached",
    "early_stop": "early stop: validation loss stopped falling",
}


def stopped(train: dict) -> str:
    """Why training ended, and which step's weights were kept, in words."""
    reason = STOPS.get(str(train.get("stopped")), "stop reason not recorded")
    kept = train.get("kept_step")
    if kept is not None and kept != train.get("steps"):
        reason += f"; weights of step {kept} kept (lowest validation loss)"
    return reason


def cost(train: dict | None, base: dict | None, now: dict, adapter: dict | None) -> str:
    train, base, adapter = train or {}, base or {}, adapter or {}
    rows = [
        ("base model", f"{base['parameters']:,} parameters" if "parameters" in base else "n/a"),
        (
            "pretraining (tiny base)",
            f"{base['pretrain_seconds']:.0f} s" if "pretrain_seconds" in base else "n/a",
        ),
        (
            "training",
            f"{train.get('train_seconds', 0):.0f} s, {train.get('steps', 'n/a')} steps "
            f"({train.get('epochs', 'n/a')} epochs; {stopped(train)}), "
            f"{train.get('tokens_per_s', 0):,.0f} tokens/s, "
            f"{train.get('processes', 1)} process(es)",
        ),
        (
            "evaluation (tuned)",
            f"{now['tuned']['latency_ms']:.1f} ms per example (batched), "
            f"{now['tuned']['generated_tokens_per_s']:,.0f} generated tokens/s",
        ),
        (
            "MLflow run",
            f"`{adapter.get('run_id', 'n/a')}` ({escape(adapter.get('tracking_uri', 'n/a'))})",
        ),
        ("commit", f"`{git_commit()}`"),
    ]
    return "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
