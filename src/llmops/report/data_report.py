"""The prep stage's data report: numbers (the DVC metrics file), markdown and PNG charts.

`summarize` returns the metrics dict that `dvc metrics diff` compares between commits: rows
per split, rejections per reason, redactions per kind, rows per value of every label field
and the lengths of every text field. `write_report` writes data_report.md with
label_balance.png and text_length.png. Charts use matplotlib's Agg backend (no display) and
carry no timestamps, so the same data gives the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.config.params import SPLITS
from llmops.config.task import Task
from llmops.data.records import REASONS, Rejection
from llmops.data.redact import KINDS
from llmops.report.charts import pyplot, save
from llmops.report.escape import escape

if TYPE_CHECKING:
    from llmops.data.rowstore import PrepResult

MAX_BARS = 40  # labels drawn one by one per chart; the rest share one "other" bar


@dataclass(frozen=True)
class Profile:
    """The kept rows, counted in one pass: rows per split and value of each label field,
    rows per split and length of each text field, PII found per kind."""

    labels: dict[str, dict[str, Counter[str]]]  # field -> split -> value -> rows
    lengths: dict[str, dict[str, Counter[int]]]  # field -> split -> length -> rows
    redactions: Counter[str]


def profile(result: PrepResult, task: Task) -> Profile:
    """Count the kept rows of `result` (streamed from its store)."""
    label_fields = [f.name for f in task.fields if f.is_label]
    text_fields = [f.name for f in task.fields if not f.is_label]
    labels = {f: {s: Counter() for s in SPLITS} for f in label_fields}
    lengths = {f: {s: Counter() for s in SPLITS} for f in text_fields}
    redactions: Counter[str] = Counter()
    for split, stats, found in result.store.kept_stats():
        for name, value in zip(label_fields, stats.labels, strict=True):
            labels[name][split][value] += 1
        for name, length in zip(text_fields, stats.lengths, strict=True):
            lengths[name][split][length] += 1
        redactions.update(found)
    return Profile(labels, lengths, redactions)  # type: ignore[arg-type]


def _lengths(counts: Counter[int]) -> dict[str, float]:
    """min, mean, p50, p95, max of the lengths counted in `counts` (length -> rows)."""
    n = sum(counts.values())
    if not n:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(counts.items())

    def pick(q: float) -> int:  # the value at index int(q * n) of the sorted lengths
        index, seen = min(n - 1, int(q * n)), 0
        for length, rows in ordered:
            seen += rows
            if seen > index:
                return length
        return ordered[-1][0]

    mean = sum(length * rows for length, rows in ordered) / n
    return {
        "min": ordered[0][0],
        "mean": round(mean, 1),
        "p50": pick(0.5),
        "p95": pick(0.95),
        "max": ordered[-1][0],
    }


def summarize(result: PrepResult, task: Task, counted: Profile | None = None) -> dict:
    """The numbers of a prep run, as written to the DVC metrics file."""
    counted = counted or profile(result, task)
    outcomes, rows_in = result.outcomes, result.rows_in
    rejected = result.rows_rejected
    fields = {f.name: f for f in task.fields}
    return {
        "rows_in": rows_in,
        "rows_kept": outcomes["kept"],
        "rows_rejected": rejected,
        "rejected_fraction": round(rejected / rows_in, 4) if rows_in else 0.0,
        "files_skipped": len(result.skipped),
        "split": result.sizes,
        "inputs": result.inputs,
        "rejected": {reason: outcomes.get(reason, 0) for reason in REASONS},
        "redactions": {kind: counted.redactions.get(kind, 0) for kind in KINDS},
        # Every label, zeros included and in declared order, so metrics diffs line up.
        "labels": {
            name: {s: {v: c[s].get(v, 0) for v in fields[name].values} for s in SPLITS}
            for name, c in counted.labels.items()
        },
        "chars": {
            name: _lengths(sum(per_split.values(), Counter()))
            for name, per_split in counted.lengths.items()
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
    rejected: Iterable[Rejection],
    skipped: dict[str, str],
    examples: int,
    decoded: dict[str, str] | None = None,
) -> str:
    """The report's text; `rejected` rows are shown redacted, shortened and escaped, like
    every name that comes from the data (llmops.report.escape). `decoded`: file -> what was decoded
    (gzip, UTF-16), `skipped`: path -> why it was not read."""
    m = metrics
    out = [
        "# Data report (prep)",
        "",
        f"Read **{m['rows_in']}** rows: kept **{m['rows_kept']}**, quarantined "
        f"**{m['rows_rejected']}** ({m['rejected_fraction']:.1%}).",
        "",
        "## Splits",
        "",
        *_table(
            ["split", "rows", "inputs"],
            [[s, m["split"][s], m.get("inputs", m["split"])[s]] for s in SPLITS],
        ),
        "",
    ]
    for name, per_split in m["labels"].items():
        out += [f"## `{name}` per split", ""]  # a field name: an identifier (llmops.config.params)
        out += [*_table([name, *SPLITS, "total"], _label_rows(per_split)), ""]
    out += [
        "## Rejected rows by reason",
        "",
        *_table(["reason", "rows"], [[r, n] for r, n in m["rejected"].items()]),
        "",
        "## PII redacted in kept rows",
        "",
        *_table(["kind", "count"], [[k, n] for k, n in m["redactions"].items()]),
        "",
        "## Lengths (characters, after cleaning)",
        "",
        *_table(
            ["field", "min", "mean", "p50", "p95", "max"],
            [[f, *lengths.values()] for f, lengths in m["chars"].items()],
        ),
        "",
        "![label balance](label_balance.png)",
        "",
        "![text length](text_length.png)",
        "",
    ]
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
                # A row that could not be parsed has no raw text: it is not copied on.
                text = f" — {escape(r.raw, limit=120)}" if r.raw else ""
                out.append(f"- {where} **{reason}**: {detail}{text}")
        out.append("")
    return "\n".join(out)


def _bars(per_split: dict[str, dict[str, int]]) -> tuple[list[str], dict[str, list[int]]]:
    """The labels drawn one by one (declared order; the MAX_BARS - 1 largest when there are
    more, the rest summed into one "other" bar) and each split's counts for them."""
    labels = list(per_split["train"])
    if len(labels) <= MAX_BARS:
        return labels, {s: [per_split[s].get(v, 0) for v in labels] for s in SPLITS}
    total = {v: sum(per_split[s].get(v, 0) for s in SPLITS) for v in labels}
    shown = set(sorted(labels, key=lambda v: -total[v])[: MAX_BARS - 1])
    drawn = [v for v in labels if v in shown]
    counts = {}
    for s in SPLITS:
        rest = sum(n for v, n in per_split[s].items() if v not in shown)
        counts[s] = [per_split[s].get(v, 0) for v in drawn] + [rest]
    return [*drawn, f"other ({len(labels) - len(drawn)} labels)"], counts


def plot_label_balance(metrics: dict, path: Path) -> None:
    """Stacked bars of rows per label and split, one panel per label field."""
    plt = pyplot()
    fields = [(name, *_bars(per_split)) for name, per_split in metrics["labels"].items()]
    sizes = [len(labels) for _, labels, _ in fields] or [1]
    width = min(16.0, 3 + 0.35 * sum(sizes))
    fig, axes = plt.subplots(
        1,
        max(1, len(fields)),
        figsize=(width, 4.5),
        gridspec_kw={"width_ratios": sizes},
        squeeze=False,
    )
    for ax, (name, labels, counts) in zip(axes[0], fields, strict=False):
        bottom = [0] * len(labels)
        for split in SPLITS:
            ax.bar(labels, counts[split], bottom=bottom, label=split)
            bottom = [b + c for b, c in zip(bottom, counts[split], strict=True)]
        ax.set_title(f"{name} per split")
        ax.set_ylabel("rows")
        ax.tick_params(axis="x", labelrotation=90 if len(labels) > 12 else 45, labelsize=7)
    if fields:
        axes[0][0].legend()
    save(plt, fig, path)


def plot_lengths(counted: Profile, path: Path) -> None:
    """Histograms of every text field's length, by split."""
    plt = pyplot()
    texts = list(counted.lengths.items())
    fig, axes = plt.subplots(
        1, max(1, len(texts)), figsize=(5 * max(1, len(texts)), 4), squeeze=False
    )
    for ax, (name, per_split) in zip(axes[0], texts, strict=False):
        for split in SPLITS:
            counts = sorted(per_split[split].items())
            if counts:  # one weighted value per length: the same bars as every row's length
                values, weights = zip(*counts, strict=True)
                ax.hist(values, bins=40, weights=weights, alpha=0.6, label=split)
        ax.set_title(f"{name} length")
        ax.set_xlabel("characters")
        ax.set_ylabel("rows")
        if any(per_split.values()):
            ax.legend()
    save(plt, fig, path)


def write_report(
    result: PrepResult,
    task: Task,
    metrics: dict,
    out: Path,
    examples: int,
    counted: Profile | None = None,
) -> None:
    """Write data_report.md and its two charts into `out`; rejected rows are already redacted."""
    out.mkdir(parents=True, exist_ok=True)
    shown = result.rejected(per_reason=examples) if examples else ()
    text = render_markdown(metrics, shown, result.skipped, examples, result.notes)
    (out / "data_report.md").write_text(text, encoding="utf-8")
    plot_label_balance(metrics, out / "label_balance.png")
    plot_lengths(counted or profile(result, task), out / "text_length.png")
