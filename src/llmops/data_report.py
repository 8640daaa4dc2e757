"""The prep stage's data report: numbers (the DVC metrics file), markdown and PNG charts.

`summarize` returns the metrics dict that `dvc metrics diff` compares between commits: rows
per split, rejections per reason, redactions per kind, rows per value of every label field
and the lengths of every text field. `write_report` writes data_report.md with
label_balance.png and text_length.png. Charts use matplotlib's Agg backend (no display) and
carry no timestamps, so the same data gives the same bytes.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.charts import pyplot, save
from llmops.escape import escape
from llmops.params import SPLITS
from llmops.records import REASONS, Record, Rejection
from llmops.redact import KINDS
from llmops.task import Field, Task

if TYPE_CHECKING:
    from llmops.stages.prep import PrepResult


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
        "p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1],
    }  # fmt: skip


def _per_split(splits: dict[str, list[Record]], field: Field) -> dict[str, dict[str, int]]:
    # Every label, zeros included and in declared order, so metrics diffs line up.
    counts = {name: Counter(r.fields[field.name] for r in rows) for name, rows in splits.items()}
    return {name: {label: c.get(label, 0) for label in field.values} for name, c in counts.items()}


def summarize(result: PrepResult, task: Task) -> dict:
    """The numbers of a prep run, as written to the DVC metrics file."""
    kept = [r for rows in result.splits.values() for r in rows]
    reasons = Counter(r.reason for r in result.rejected)
    rows_in = result.rows_in
    return {
        "rows_in": rows_in,
        "rows_kept": len(kept),
        "rows_rejected": len(result.rejected),
        "rejected_fraction": round(len(result.rejected) / rows_in, 4) if rows_in else 0.0,
        "files_skipped": len(result.skipped),
        "split": {name: len(rows) for name, rows in result.splits.items()},
        "rejected": {reason: reasons.get(reason, 0) for reason in REASONS},
        "redactions": {kind: result.redactions.get(kind, 0) for kind in KINDS},
        "labels": {f.name: _per_split(result.splits, f) for f in task.fields if f.is_label},
        "chars": {
            f.name: _lengths([len(r.fields[f.name]) for r in kept])
            for f in task.fields
            if not f.is_label
        },
    }


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table; text cells (labels, names, paths, reasons) are escaped."""
    cell = lambda c: escape(c) if isinstance(c, str) else str(c)  # noqa: E731
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows]


def _label_rows(per_split: dict[str, dict[str, int]]) -> list[list]:
    rows = []
    for label in per_split["train"]:
        counts = [per_split[s].get(label, 0) for s in SPLITS]
        rows.append([label, *counts, sum(counts)])
    return rows


def render_markdown(
    metrics: dict,
    rejected: list[Rejection],
    skipped: dict[str, str],
    examples: int,
    decoded: dict[str, str] | None = None,
) -> str:
    """The report's text; `rejected` rows are shown redacted, shortened and escaped, like
    every name that comes from the data (llmops.escape). `decoded`: file -> what was decoded
    (gzip, UTF-16), `skipped`: path -> why it was not read."""
    m = metrics
    out = [
        "# Data report (prep)", "",
        f"Read **{m['rows_in']}** rows: kept **{m['rows_kept']}**, quarantined "
        f"**{m['rows_rejected']}** ({m['rejected_fraction']:.1%}).", "",
        "## Splits", "", *_table(["split", "rows"], [[s, m["split"][s]] for s in SPLITS]), "",
    ]  # fmt: skip
    for name, per_split in m["labels"].items():
        out += [f"## `{name}` per split", ""]  # a field name: an identifier (llmops.params)
        out += [*_table([name, *SPLITS, "total"], _label_rows(per_split)), ""]
    out += [
        "## Rejected rows by reason", "",
        *_table(["reason", "rows"], [[r, n] for r, n in m["rejected"].items()]), "",
        "## PII redacted in kept rows", "",
        *_table(["kind", "count"], [[k, n] for k, n in m["redactions"].items()]), "",
        "## Lengths (characters, after cleaning)", "",
        *_table(
            ["field", "min", "mean", "p50", "p95", "max"],
            [[f, *lengths.values()] for f, lengths in m["chars"].items()],
        ), "",
        "![label balance](label_balance.png)", "", "![text length](text_length.png)", "",
    ]  # fmt: skip
    if decoded:
        out += ["## Files decoded before reading", ""]
        out += [*_table(["file", "decoded"], [[p, how] for p, how in decoded.items()]), ""]
    if skipped:
        out += ["## Files not read", ""]
        out += [*_table(["file", "why"], [[p, why] for p, why in skipped.items()]), ""]
    if examples and rejected:
        out += ["## Examples of rejected rows", ""]
        shown: Counter[str] = Counter()
        for r in rejected:
            if shown[r.reason] < examples:
                shown[r.reason] += 1
                where, reason, detail = escape(r.where), escape(r.reason), escape(r.detail)
                out.append(f"- {where} **{reason}**: {detail} — {escape(r.raw, limit=120)}")
        out.append("")
    return "\n".join(out)


def plot_label_balance(metrics: dict, path: Path) -> None:
    """Stacked bars of rows per label and split, one panel per label field."""
    plt = pyplot()
    fields = list(metrics["labels"].items())
    sizes = [len(per_split["train"]) for _, per_split in fields] or [1]
    width = min(16.0, 3 + 0.35 * sum(sizes))
    fig, axes = plt.subplots(
        1, max(1, len(fields)), figsize=(width, 4.5), gridspec_kw={"width_ratios": sizes},
        squeeze=False,
    )  # fmt: skip
    for ax, (name, per_split) in zip(axes[0], fields, strict=False):
        labels = list(per_split["train"])
        bottom = [0] * len(labels)
        for split in SPLITS:
            counts = [per_split[split].get(label, 0) for label in labels]
            ax.bar(labels, counts, bottom=bottom, label=split)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_title(f"{name} per split")
        ax.set_ylabel("rows")
        ax.tick_params(axis="x", labelrotation=90 if len(labels) > 12 else 45, labelsize=7)
    if fields:
        axes[0][0].legend()
    save(plt, fig, path)


def plot_lengths(splits: dict[str, list[Record]], task: Task, path: Path) -> None:
    """Histograms of every text field's length, by split."""
    plt = pyplot()
    texts = [f for f in task.fields if not f.is_label]
    fig, axes = plt.subplots(1, max(1, len(texts)), figsize=(5 * max(1, len(texts)), 4),
                             squeeze=False)  # fmt: skip
    for ax, field in zip(axes[0], texts, strict=False):
        for split in SPLITS:
            values = [len(r.fields[field.name]) for r in splits[split]]
            if values:
                ax.hist(values, bins=40, alpha=0.6, label=split)
        ax.set_title(f"{field.name} length")
        ax.set_xlabel("characters")
        ax.set_ylabel("rows")
        if any(splits.values()):
            ax.legend()
    save(plt, fig, path)


def write_report(result: PrepResult, task: Task, metrics: dict, out: Path, examples: int) -> None:
    """Write data_report.md and its two charts into `out`; rejected rows are already redacted."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(metrics, result.rejected, result.skipped, examples, result.notes)
    (out / "data_report.md").write_text(text, encoding="utf-8")
    plot_label_balance(metrics, out / "label_balance.png")
    plot_lengths(result.splits, task, out / "text_length.png")
