"""Every evaluation metric, defined once and derived from the task: eval, gates and report.

An output is the model's generated text, parsed by `Task.parse_answer`: `json_valid` means
a JSON object with every output field as a string, and a declared label in every label
field (an undeclared label parses as no answer for its field); fields are scored from
whatever object parsed, so a partial object earns the fields it has but is not valid; text
that is not a JSON object earns nothing. Names follow one pattern, `<field>_<metric>`:

    per label output field F
      F_accuracy     share of answers whose F equals the reference
      F_macro_f1     F1 per label (those that occur in the references or the answers),
                     averaged; an answer outside F's values counts only against the truth
      F_valid_label  share of answers whose F is one of F's values
      F_rank_error   ordered labels only: mean |rank(answer) - rank(reference)|; an answer
                     that is not a valid label counts as the largest distance (lower is better)
    per text output field F, against every reference of the example's input
      F_rouge_l      mean ROUGE-L F1, each answer's best over its references (Google's
                     rouge-score with Porter stemming, as usually reported; its tokens are
                     Unicode words, and each CJK character a word, so Cyrillic, Greek,
                     Arabic or Chinese text scores, where rouge-score's own tokens keep
                     [a-z0-9] only; on ASCII text they are rouge-score's own; a script
                     without spaces, such as Thai, counts whole runs); no text scores 0
      F_bleu         sacrebleu corpus BLEU, 0-100, multi-reference (`signatures`)
      F_chrf         sacrebleu corpus chrF, 0-100, multi-reference
    for the whole answer
      json_valid, exact_match (every output field equals the reference: for a text
      field, one of its references)
    added by the eval stage
      test_loss and perplexity (answer tokens of the references), latency_ms (generation
      wall time per example, batched), generated_tokens_per_s

An example is one input of the split: the rows that share their inputs (up to case and
whitespace; prep keeps several only as references of a text output) are one example,
whose first row (prep writes the input's leader first) gives its id, inputs and labels
(`group`).

Each metric has a range (`metrics`): a gate bound outside it, or a max_drop larger than
all of it, is a params error.

The eval metrics file (metrics/eval.json, here or committed at a baseline) is read back by
`eval_metrics`, which names the file and what is wrong with it (InputError).

List a task's metrics and their ranges, and check the gates in params.yaml:
python -m llmops.evaluate.metrics
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops.config.params import GateParams, Params, ParamsError, load_params
from llmops.config.task import Parsed, Task

# A ROUGE token: one CJK ideograph, kana or Hangul syllable, or a run of other letters and
# digits (on ASCII text: rouge-score's [a-z0-9]+).
WORD = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
    r"|(?:(?![\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])[^\W_])+"
)
Texts = Mapping[str, Sequence[str]]  # an example's references, per text output field
MODEL = "tuned"  # the fine-tuned model's metrics in metrics/eval.json: what gates judge
EVAL_SHAPE = 'a JSON object of models ("tuned", ...), each an object of metric names to numbers'


class InputError(ValueError):
    """An input of the gate or the report that cannot be used (a metrics file, a per-example
    record, the baseline ref or a file committed there); the message names it."""


@dataclass(frozen=True)
class Metric:
    """Which way a metric is better and the values it can take."""

    higher: bool  # higher is better
    lo: float = 0.0
    hi: float | None = 1.0  # None: unbounded

    def contains(self, x: float) -> bool:
        return self.lo <= x and (self.hi is None or x <= self.hi)

    def describe(self) -> str:
        return f"[{self.lo:g}, {'∞)' if self.hi is None else f'{self.hi:g}]'}"


RATE = Metric(True)  # a share of examples, or a mean of per-example scores in [0, 1]
# Text scores computed over the whole corpus at once: no per-example value to pair.
CORPUS_SUFFIXES = ("_bleu", "_chrf")
# Added by the eval stage.
EVAL_METRICS = {
    "test_loss": Metric(False, 0.0, None),
    "perplexity": Metric(False, 1.0, None),
    "latency_ms": Metric(False, 0.0, None),
    "generated_tokens_per_s": Metric(True, 0.0, None),
}


def metrics(task: Task) -> dict[str, Metric]:
    """Every metric of the task, in report order."""
    out = {"json_valid": RATE}
    for f in task.labels:
        out |= {
            f"{f.name}_accuracy": RATE,
            f"{f.name}_macro_f1": RATE,
            f"{f.name}_valid_label": RATE,
        }
        if f.ordered:  # ranks 0 .. len(values) - 1 apart
            out[f"{f.name}_rank_error"] = Metric(False, 0.0, float(len(f.values) - 1))
    for f in task.texts:
        hundred = Metric(True, 0.0, 100.0)
        out |= {f"{f.name}_rouge_l": RATE, f"{f.name}_bleu": hundred, f"{f.name}_chrf": hundred}
    return out | {"exact_match": RATE} | EVAL_METRICS


def metric_names(task: Task) -> dict[str, bool]:
    """Every metric of the task, in report order, mapped to whether higher is better."""
    return {name: m.higher for name, m in metrics(task).items()}


def rates(task: Task) -> tuple[str, ...]:
    """The metrics that are shares in [0, 1] where higher is better (drawn as bars)."""
    return tuple(name for name, m in metrics(task).items() if m == RATE)


def check_gates(task: Task, gates: GateParams, where: str = "params.yaml") -> None:
    """Raise ParamsError when a gate names a metric this task does not have, or holds a
    bound outside the metric's range or a drop larger than all of it."""
    known = metrics(task)
    for kind, table in (("min", gates.min), ("max_drop", gates.max_drop)):
        for name, value in table.items():
            key = f"{where}: gate.{kind}.{name}"
            if name not in known:
                raise ParamsError(
                    f"{key}: no such metric for this task; expected one of: {', '.join(known)}"
                )
            metric = known[name]
            if kind == "min" and not metric.contains(value):
                raise ParamsError(
                    f"{key}: {value:g} is outside the metric's range {metric.describe()}"
                )
            span = None if metric.hi is None else metric.hi - metric.lo
            if kind == "max_drop" and span is not None and value > span:
                raise ParamsError(
                    f"{key}: a drop of {value:g} is more than the metric's "
                    f"whole range {metric.describe()}"
                )


def load_checked(path: Path) -> tuple[Params, Task]:
    """params.yaml and its task, with the gates' metric names checked (ParamsError)."""
    params = load_params(path)
    task = Task.from_params(params.task)
    check_gates(task, params.gate, str(path))
    return params, task


def eval_metrics(text: str, where: str) -> dict[str, dict[str, float]]:
    """The models and metrics of an eval metrics file (metrics/eval.json); InputError naming
    `where` and the shape expected when it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        problem = (
            f"{err.msg} at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else err
        )
        raise InputError(f"{where}: not valid JSON ({problem}); expected {EVAL_SHAPE}") from None
    if not isinstance(data, dict) or not isinstance(data.get(MODEL), dict):
        got = f"no {MODEL!r} object" if isinstance(data, dict) else _json_kind(data)
        raise InputError(f"{where}: expected {EVAL_SHAPE}, got {got}")
    for model, values in data.items():
        if not isinstance(values, dict):
            expected = "an object of metric names to numbers"
            raise InputError(f"{where}: {model}: expected {expected}, got {_json_kind(values)}")
        for name, value in values.items():
            if not _number(value):
                shown = json.dumps(value)[:40]
                raise InputError(f"{where}: {model}.{name}: expected a number, got {shown}")
    return data


def _number(value) -> bool:
    """A finite int or float (JSON's NaN and Infinity are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past float's range
        return False


def _json_kind(value) -> str:
    kinds = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return kinds.get(type(value), type(value).__name__)


def words(text: str) -> list[str]:
    """ROUGE's tokens: lower-cased words, Porter-stemmed as rouge-score stems them (ASCII
    words of more than 3 characters)."""
    stem = _stemmer().stem
    return [stem(w) if len(w) > 3 and w.isascii() else w for w in WORD.findall(text.lower())]


@functools.cache
def _stemmer():
    from nltk.stem import porter

    return porter.PorterStemmer()


class _Words:
    """`words` as a rouge-score tokenizer."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


@functools.cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(hypothesis: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F1 against the best of the references (rouge-score's `score_multi`)."""
    refs = [references] if isinstance(references, str) else list(references)
    if not hypothesis or not any(refs):
        return 0.0
    return float(_rouge().score_multi(refs, hypothesis)["rougeL"].fmeasure)


def references(task: Task, row: Mapping, texts: Texts | None) -> dict[str, list[str]]:
    """Every reference of each text output field: `texts`' when given (and not empty), else
    the row's."""
    return {f.name: list((texts or {}).get(f.name) or [row[f.name]]) for f in task.texts}


def score_example(
    task: Task, parsed: Parsed, reference: Mapping, texts: Texts | None = None
) -> dict[str, float]:
    """Per-example scores: each is the example's share of a split-level mean metric.
    `texts`: the example's references per text field (default: the reference row's)."""
    scores = {"json_valid": float(parsed.valid)}
    for f in task.labels:
        answer, truth = parsed.fields[f.name], reference[f.name]
        scores[f"{f.name}_accuracy"] = float(answer == truth)
        scores[f"{f.name}_valid_label"] = float(answer in f.values)
        if f.ordered:
            rank = f.values.index
            error = abs(rank(answer) - rank(truth)) if answer in f.values else len(f.values) - 1
            scores[f"{f.name}_rank_error"] = float(error)
    refs = references(task, reference, texts)
    for f in task.texts:
        scores[f"{f.name}_rouge_l"] = rouge_l(parsed.fields[f.name] or "", refs[f.name])
    same = all(parsed.fields[f.name] == reference[f.name] for f in task.labels) and all(
        parsed.fields[f.name] in refs[f.name] for f in task.texts
    )
    scores["exact_match"] = float(same)
    return scores


def group(task: Task, rows: Sequence[Mapping]) -> tuple[list[Mapping], list[dict[str, list[str]]]]:
    """The split's examples: the first row of each input (up to case and whitespace), in
    order, and each one's references per text output field (its rows' texts, in order)."""
    first: dict[str, int] = {}
    leads: list[Mapping] = []
    texts: list[dict[str, list[str]]] = []
    for row in rows:
        key = task.input_key(row)
        if key not in first:
            first[key] = len(leads)
            leads.append(row)
            texts.append({f.name: [] for f in task.texts})
        for f in task.texts:
            texts[first[key]][f.name].append(row[f.name])
    return leads, texts


def macro_f1(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> float:
    """Mean F1 over the `labels` that occur in `truth` or `predicted`."""
    scores = []
    for label in [x for x in labels if x in truth or x in predicted]:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's reference streams: the i-th stream holds each example's i-th reference
    (None where an example has fewer)."""
    most = max((len(r) for r in references), default=1)
    return [[r[i] if i < len(r) else None for r in references] for i in range(most)]


def bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]]) -> float:
    """sacrebleu corpus BLEU (0-100, default 13a tokenizer), each hypothesis against all
    of its references."""
    from sacrebleu.metrics import BLEU

    refs = [[r] if isinstance(r, str) else r for r in references]
    return float(BLEU().corpus_score(list(hypotheses), _streams(refs)).score)


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus chrF (0-100), each hypothesis against all of its references."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().corpus_score(list(hypotheses), _streams(references)).score)


def signatures(several: bool = True) -> dict[str, str]:
    """How the text metrics are computed, as their scorers state it (for reports):
    sacrebleu's signatures of a score with a varying number of references per example
    (`several`; nrefs:var), else with one each (nrefs:1)."""
    import importlib.metadata

    from sacrebleu.metrics import BLEU, CHRF

    refs = [["a b", "c d"], ["a b", None]] if several else [["a b", "c d"]]
    out = {}
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        metric.corpus_score(["a b", "c d"], refs)  # sacrebleu signs a score it computed
        out[name] = str(metric.get_signature())
    version = importlib.metadata.version("rouge-score")
    out["rouge_l"] = f"rouge-score {version}|rougeL F1|stem:porter|tok:unicode-words|refs:best"
    return out


def summarize(
    task: Task,
    parsed: Sequence[Parsed],
    rows: Sequence[Mapping],
    texts: Sequence[Texts] | None = None,
) -> dict:
    """Split-level metrics from parsed outputs and reference rows (and, for text fields,
    each example's references: `texts`), in `metric_names` order."""
    examples = list(texts) if texts is not None else [None] * len(rows)
    scores = [score_example(task, p, r, t) for p, r, t in zip(parsed, rows, examples, strict=True)]
    out = {}
    for name in metric_names(task):
        if name in scores[0]:
            out[name] = sum(s[name] for s in scores) / len(scores)
    for f in task.labels:
        truth = [r[f.name] for r in rows]
        answers = [p.fields[f.name] for p in parsed]
        out[f"{f.name}_macro_f1"] = macro_f1(truth, answers, f.values)
    for f in task.texts:
        answers = [p.fields[f.name] or "" for p in parsed]
        refs = [references(task, r, t)[f.name] for r, t in zip(rows, examples, strict=True)]
        out[f"{f.name}_bleu"] = bleu(answers, refs)
        out[f"{f.name}_chrf"] = chrf(answers, refs)
    return {name: out[name] for name in metric_names(task) if name in out}


def confusion(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]):
    """Rows of (actual, predicted, count); predictions outside `labels` become `(invalid)`."""
    counts: dict[tuple[str, str], int] = {}
    for t, p in zip(truth, predicted, strict=True):
        key = (t, p if p in labels else "(invalid)")
        counts[key] = counts.get(key, 0) + 1
    return [(t, p, c) for (t, p), c in sorted(counts.items())]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="List the task's metrics; check the gates.")
    parser.add_argument("params", nargs="?", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        params, task = load_checked(args.params)
    except ParamsError as err:
        raise SystemExit(str(err)) from None
    for name, m in metrics(task).items():
        print(f"{name:32} {'higher' if m.higher else 'lower'} is better  {m.describe()}")
    gates = len(params.gate.min) + len(params.gate.max_drop)
    print(f"{args.params}: {gates} gates name known metrics, within their ranges")


if __name__ == "__main__":
    main()
