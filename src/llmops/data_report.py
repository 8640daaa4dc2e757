"""The prep stage's data report: numbers (the DVC metrics file), markdown and PNG charts.

`summarize` returns the metrics dict that `dvc metrics diff` compares between commits;
`write_report` writes data_report.md with label_balance.png and message_length.png.
Charts use matplotlib's Agg backend (no display) and carry no timestamps, so the same
data gives the same bytes.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from llmops.charts import pyplot, save
from llmops.params import TaskParams
from llmops.records import REASONS, SPLITS, Rejection, Ticket
from llmops.redact import KINDS


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
        "p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1],
    }  # fmt: skip


def _per_split(
    splits: dict[str, list[Ticket]], field: str, labels: tuple[str, ...]
) -> dict[str, dict[str, int]]:
    # Every label, zeros included and in params order, so metrics diffs line up.
    counts = {name: Counter(getattr(t, field) for t in rows) for name, rows in splits.items()}
    return {name: {label: c.get(label, 0) for label in labels} for name, c in counts.items()}


def summarize(
    splits: dict[str, list[Ticket]],
    rejected: list[Rejection],
    rows_in: int,
    redactions: Counter[str],
    task: TaskParams,
) -> dict:
    """The numbers of a prep run, as written to the DVC metrics file."""
    kept = [t for rows in splits.values() for t in rows]
    reasons = Counter(r.reason for r in rejected)
    return {
        "rows_in": rows_in,
        "rows_kept": len(kept),
        "rows_rejected": len(rejected),
        "rejected_fraction": round(len(rejected) / rows_in, 4) if rows_in else 0.0,
        "split": {name: len(rows) for name, rows in splits.items()},
        "rejected": {reason: reasons.get(reason, 0) for reason in REASONS},
        "redactions": {kind: redactions.get(kind, 0) for kind in KINDS},
        "category": _per_split(splits, "category", task.categories),
        "priority": _per_split(splits, "priority", task.priorities),
        "message_chars": _lengths([len(t.message) for t in kept]),
        "reply_chars": _lengths([len(t.reply) for t in kept]),
    }  # fmt: skip


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _label_rows(per_split: dict[str, dict[str, int]]) -> list[list]:
    rows = []
    for label in per_split["train"]:
        counts = [per_split[s].get(label, 0) for s in SPLITS]
        rows.append([label, *counts, sum(counts)])
    return rows


def render_markdown(metrics: dict, rejected: list[Rejection], examples: int) -> str:
    """The report's text; `rejected` rows are shown redacted and shortened."""
    m = metrics
    out = [
        "# Data report (prep)", "",
        f"Read **{m['rows_in']}** rows: kept **{m['rows_kept']}**, quarantined "
        f"**{m['rows_rejected']}** ({m['rejected_fraction']:.1%}).", "",
        "## Splits", "", *_table(["split", "rows"], [[s, m["split"][s]] for s in SPLITS]), "",
        "## Categories per split", "",
        *_table(["category", *SPLITS, "total"], _label_rows(m["category"])), "",
        "## Priorities per split", "",
        *_table(["priority", *SPLITS, "total"], _label_rows(m["priority"])), "",
        "## Rejected rows by reason", "",
        *_table(["reason", "rows"], [[r, n] for r, n in m["rejected"].items()]), "",
        "## PII redacted in kept rows", "",
        *_table(["kind", "count"], [[k, n] for k, n in m["redactions"].items()]), "",
        "## Lengths (characters, after cleaning)", "",
        *_table(
            ["field", "min", "mean", "p50", "p95", "max"],
            [[f, *m[f"{f}_chars"].values()] for f in ("message", "reply")],
        ), "",
        "![label balance](label_balance.png)", "", "![message length](message_length.png)", "",
    ]  # fmt: skip
    if examples and rejected:
        out += ["## Examples of rejected rows", ""]
        shown: Counter[str] = Counter()
        for r in rejected:
            if shown[r.reason] < examples:
                shown[r.reason] += 1
                raw = (r.raw if len(r.raw) <= 120 else r.raw[:120] + "…").replace("`", "'")
                out.append(f"- `{r.where}` **{r.reason}**: {r.detail} — `{raw}`")
        out.append("")
    return "\n".join(out)


def plot_label_balance(metrics: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1.3]})
    for ax, field in zip(axes, ("category", "priority"), strict=True):
        labels = list(metrics[field]["train"])
        bottom = [0] * len(labels)
        for split in SPLITS:
            counts = [metrics[field][split].get(label, 0) for label in labels]
            ax.bar(labels, counts, bottom=bottom, label=split)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_title(f"{field} per split")
        ax.set_ylabel("rows")
        ax.tick_params(axis="x", labelrotation=45)
    axes[0].legend()
    save(plt, fig, path)


def plot_lengths(splits: dict[str, list[Ticket]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for split in SPLITS:
        values = [len(t.message) for t in splits[split]]
        if values:
            ax.hist(values, bins=40, alpha=0.6, label=split)
    ax.set_title("message length")
    ax.set_xlabel("characters")
    ax.set_ylabel("rows")
    if any(splits.values()):
        ax.legend()
    save(plt, fig, path)


def write_report(
    splits: dict[str, list[Ticket]],
    rejected: list[Rejection],
    metrics: dict,
    out: Path,
    examples: int,
) -> None:
    """Write data_report.md and its two charts into `out`; `rejected` is already redacted."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(metrics, rejected, examples)
    (out / "data_report.md").write_text(text, encoding="utf-8")
    plot_label_balance(metrics, out / "label_balance.png")
    plot_lengths(splits, out / "message_length.png")
