"""Paired comparisons of two runs on the same test examples: is a change real or noise?

    pairs = pair(baseline_rows, current_rows)           # per-example records, joined by id
    change = compare("label_accuracy", pairs, task, confidence=0.95)
    change.delta, change.low, change.high, change.p_worse, change.significant

The records are the fine-tuned model's per-example rows (metrics/eval_examples.csv): an
example is paired when both runs have its id with the same reference answer. For every
metric that is a mean of per-example scores (accuracies, valid labels, rank errors,
ROUGE-L, json_valid, exact_match) and for each label field's macro-F1 (from the answers and
references), `compare` gives:
- the change, with a `confidence` interval from a paired bootstrap over the examples
  (scipy.stats.bootstrap, percentile method, 2,000 resamples, fixed seed);
- `p_worse`, the one-sided p-value of a paired permutation test that the current run is
  worse (scipy.stats.permutation_test, each example's two results swapped at random,
  2,000 permutations): the exact McNemar-style test for 0/1 scores.
Corpus metrics (BLEU, chrF) and model metrics (test_loss, perplexity, latency) have no
per-example scores: `compare` returns None for them.

That covers the noise of the test sample, not the noise of training: two runs of the same
code with another seed, or on another CPU (float sums rounded differently), give genuinely
different models, and the examples alone would call their difference real. When the
training noise of a metric has been measured (`make noise`: its standard deviation over
runs that change nothing meaningful, benchmarks/results/noise.json), pass it as `run_std`:
the interval and the test then use a normal approximation with both variances, the
bootstrap's standard error squared plus twice the run variance (two independent runs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmops.config.task import Task
from llmops.evaluate.metrics import CORPUS_SUFFIXES, EVAL_METRICS, metric_names

RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Change:
    """A metric's change from the baseline to the current run, over paired examples."""

    metric: str
    old: float
    new: float
    low: float  # confidence interval of new - old
    high: float
    p_worse: float  # one-sided: the current run is worse than the baseline
    n: int
    higher_is_better: bool
    run_std: float | None = None  # training noise included (std of one run), if measured

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0

    @property
    def worse(self) -> bool:
        return self.delta < 0 if self.higher_is_better else self.delta > 0


def training_noise(path: Path | None) -> dict[str, float]:
    """Each metric's run-to-run standard deviation from `make noise`'s output, or {} when
    there is none (a metric it does not name has no training noise measured)."""
    if path is None or not path.exists():
        return {}
    try:
        spread = json.loads(path.read_text(encoding="utf-8"))["spread"]
        stds = {m: float(s["std"]) for m, s in spread.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a noise measurement ({err}); rerun make noise") from None
    bad = next((m for m, std in stds.items() if not math.isfinite(std) or std < 0), None)
    if bad is not None:
        raise ValueError(f"{path}: {bad}: std {stds[bad]} is not a finite number >= 0")
    return stds


def pair(old: list[dict], new: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows of both runs for the examples they share (same id, same reference)."""
    before = {r["id"]: r for r in old}
    both = [(before[r["id"]], r) for r in new if r["id"] in before]
    both = [(a, b) for a, b in both if a["reference"] == b["reference"]]
    return [a for a, _ in both], [b for _, b in both]


def comparable(task: Task) -> list[str]:
    """The metrics that can be compared example by example."""
    names = metric_names(task)
    return [m for m in names if not m.endswith(CORPUS_SUFFIXES) and m not in EVAL_METRICS]


def _stacked(metric: str, task: Task, old: list[dict], new: list[dict]):
    """(width, statistic over index arrays) for `metric`: indices 0..n-1 are the baseline's
    examples and n..2n-1 the current run's, so one function serves both sides, the
    bootstrap (indices resampled in pairs) and the permutation test (pairs swapped)."""
    if metric.endswith("_macro_f1"):
        field = task.field(metric.removesuffix("_macro_f1"))
        labels = {v: i for i, v in enumerate(field.values)}
        truth = _onehot([labels.get(r[f"{field.name}_reference"]) for r in new], len(labels))
        answers = [labels.get(r[f"{field.name}_answer"]) for r in [*old, *new]]
        both, truth2 = _onehot(answers, len(labels)), np.concatenate([truth, truth])
        return len(labels), lambda idx: _macro_f1(truth2, both, idx)
    both = np.array([float(r[metric]) for r in [*old, *new]])
    return 1, lambda idx: both[idx].mean(axis=-1)


def _onehot(indices: list[int | None], size: int) -> np.ndarray:
    out = np.zeros((len(indices), size))
    for row, i in enumerate(indices):
        if i is not None:  # an answer outside the labels counts against the truth only
            out[row, i] = 1.0
    return out


def _macro_f1(truth: np.ndarray, answers: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Macro-F1 over the labels that occur, for each row of example indices `idx`."""
    t, p = truth[idx], answers[idx]  # (..., n, labels)
    tp = (t * p).sum(axis=-2)
    fp = ((1 - t) * p).sum(axis=-2)
    fn = (t * (1 - p)).sum(axis=-2)
    occurs = (tp + fp + fn) > 0
    f1 = np.where(occurs, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(occurs.sum(axis=-1), 1)


def compare(
    metric: str,
    pairs: tuple[list[dict], list[dict]],
    task: Task,
    confidence: float,
    run_std: float | None = None,
) -> Change | None:
    """The metric's paired change with its interval and p-value; None when it has no
    per-example scores or no example is paired. `run_std` adds the training noise (see the
    module docstring)."""
    old, new = pairs
    if metric not in comparable(task) or not new:
        return None
    width, stat = _stacked(metric, task, old, new)
    n = len(new)
    first, second = np.arange(n), np.arange(n) + n
    batch = max(1, 4_000_000 // (n * width))  # bounds the memory of one vectorised call
    higher = metric_names(task)[metric]
    before, after = float(stat(first)), float(stat(second))
    low, high, spread = _interval(lambda idx: stat(idx + n) - stat(idx), n, confidence, batch)
    if run_std:
        return _with_training_noise(metric, before, after, spread, run_std, n, higher, confidence)
    same = np.array_equal(stat(first[:, None]), stat(second[:, None]))  # per example
    p_worse = 1.0 if same else _p_worse(stat, n, higher, batch)
    return Change(metric, before, after, low, high, p_worse, n, higher)


def _with_training_noise(
    metric: str,
    old: float,
    new: float,
    spread: float,
    run_std: float,
    n: int,
    higher: bool,
    confidence: float,
) -> Change:
    """Normal interval and test of the change with both variances: the examples' (the
    bootstrap's standard error) and the training's (two runs, each with std `run_std`)."""
    from scipy.stats import norm

    delta = new - old
    se = float(np.sqrt(spread**2 + 2 * run_std**2))
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p_worse = float(norm.cdf(delta / se) if higher else norm.sf(delta / se))
    return Change(metric, old, new, delta - z * se, delta + z * se, p_worse, n, higher, run_std)


def _interval(delta: Callable, n: int, confidence: float, batch: int) -> tuple[float, float, float]:
    """Percentile interval and standard error of the paired bootstrap."""
    from scipy.stats import bootstrap

    result = bootstrap(
        (np.arange(n),),
        lambda idx, axis=-1: delta(idx),
        vectorized=True,
        paired=True,
        n_resamples=RESAMPLES,
        batch=batch,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    low, high = result.confidence_interval
    return float(low), float(high), float(result.standard_error)


def _p_worse(stat: Callable, n: int, higher: bool, batch: int) -> float:
    from scipy.stats import permutation_test

    result = permutation_test(
        (np.arange(n), np.arange(n) + n),  # scipy swaps the two indices of some examples
        lambda x, y, axis=-1: stat(y) - stat(x),
        permutation_type="samples",
        vectorized=True,
        n_resamples=RESAMPLES,
        batch=batch,
        alternative="less" if higher else "greater",
        rng=np.random.default_rng(SEED),
    )
    return float(result.pvalue)
