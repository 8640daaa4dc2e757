"""Every evaluation metric, defined once: the eval stage, the gates and the report use these.

An output is the model's generated text. It is parsed as JSON (`parse_answer`):
- `json_valid`: a JSON object with the keys category, priority and reply, all strings;
- fields are scored from whatever object parsed, so `{"category": "refund"}` earns the
  category but is not valid; text that is not a JSON object earns nothing.
Per split: `json_valid`, `category_accuracy`, `priority_accuracy`, `category_macro_f1`
(F1 per category of `task.categories` that occurs in the references or the predictions,
averaged; a prediction outside the set counts only against the true class),
`exact_match` (all three fields equal the reference),
`reply_rouge_l` (mean ROUGE-L F1 over lower-cased word tokens; no reply scores 0) and
`reply_bleu` (sacrebleu corpus BLEU, 0-100). The eval stage adds `test_loss`, `perplexity`,
`latency_ms` (generation wall time of the batched split, per example) and
`generated_tokens_per_s`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmops.prompts import ANSWER_KEYS

# Metrics the gates may name, and which way is better.
HIGHER_IS_BETTER = {
    "json_valid": True,
    "category_accuracy": True,
    "priority_accuracy": True,
    "category_macro_f1": True,
    "exact_match": True,
    "reply_rouge_l": True,
    "reply_bleu": True,
    "test_loss": False,
    "perplexity": False,
}
# The split-level scores in [0, 1], drawn as bars (eval plots, report charts).
RATES = (
    "json_valid",
    "category_accuracy",
    "priority_accuracy",
    "category_macro_f1",
    "exact_match",
    "reply_rouge_l",
)
WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Parsed:
    """What could be read from one output."""

    valid: bool
    category: str | None = None
    priority: str | None = None
    reply: str | None = None
    error: str = ""


def parse_answer(text: str) -> Parsed:
    """Parse a generated answer; never raises (a parse failure is a scored outcome)."""
    try:
        value = json.loads(text.strip())
    except ValueError as err:
        return Parsed(False, error=f"not JSON: {err}")
    if not isinstance(value, dict):
        return Parsed(False, error=f"not a JSON object: {type(value).__name__}")
    fields = {k: value[k] if isinstance(value.get(k), str) else None for k in ANSWER_KEYS}
    missing = [k for k, v in fields.items() if v is None]
    error = f"missing or non-string: {', '.join(missing)}" if missing else ""
    return Parsed(not missing, **fields, error=error)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of word tokens."""
    hyp, ref = words(hypothesis), words(reference)
    if not hyp or not ref:
        return 0.0
    previous = [0] * (len(ref) + 1)
    for h in hyp:
        current = [0]
        for j, r in enumerate(ref):
            current.append(previous[j] + 1 if h == r else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_example(parsed: Parsed, reference: dict) -> dict[str, float]:
    """Per-example scores (0/1, and ROUGE-L in [0, 1])."""
    category = float(parsed.category == reference["category"])
    priority = float(parsed.priority == reference["priority"])
    exact = category * priority * float(parsed.reply == reference["reply"])
    return {
        "json_valid": float(parsed.valid),
        "category": category,
        "priority": priority,
        "exact": exact,
        "rouge_l": rouge_l(parsed.reply or "", reference["reply"]),
    }


def macro_f1(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> float:
    """Mean F1 over the `labels` that occur in `truth` or `predicted`."""
    scores = []
    for label in [x for x in labels if x in truth or x in predicted]:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU (0-100) with its default 13a tokenizer."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def summarize(parsed: Sequence[Parsed], references: Sequence[dict], categories: Sequence[str]):
    """Split-level metrics from parsed outputs and reference rows."""
    scores = [score_example(p, r) for p, r in zip(parsed, references, strict=True)]
    n = len(scores)

    def mean(key: str) -> float:
        return sum(s[key] for s in scores) / n

    return {
        "json_valid": mean("json_valid"),
        "category_accuracy": mean("category"),
        "priority_accuracy": mean("priority"),
        "category_macro_f1": macro_f1(
            [r["category"] for r in references], [p.category for p in parsed], categories
        ),
        "exact_match": mean("exact"),
        "reply_rouge_l": mean("rouge_l"),
        "reply_bleu": bleu([p.reply or "" for p in parsed], [r["reply"] for r in references]),
    }


def confusion(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]):
    """Rows of (actual, predicted, count); predictions outside `labels` become `(invalid)`."""
    counts: dict[tuple[str, str], int] = {}
    for t, p in zip(truth, predicted, strict=True):
        key = (t, p if p in labels else "(invalid)")
        counts[key] = counts.get(key, 0) + 1
    return [(t, p, c) for (t, p), c in sorted(counts.items())]
