"""The tests' own tasks and data, unrelated to the worked example: the machinery is tested on
these, never on the repository's data/raw or its task.yaml.

- `reviews`: product reviews in, three outputs: `topic` (label), `sentiment` (ordered label)
  and `summary` (text). Raw JSONL rows name their columns `uid` and `review_text`, so the
  column mapping is exercised.
- `intents`: a classification-only task: CSV rows `utterance,intent` with a separate test
  file, like a public intent dataset.
`PARAMS` is a complete params file for the reviews task at test sizes (a tiny model, short
runs); `project_files` lays a project folder out like the repository.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

import yaml

TOPICS = ("price", "quality", "delivery", "service")
SENTIMENTS = ("negative", "neutral", "positive")
_SAYS = {
    ("price", "negative"): ["way too expensive for what you get", "overpriced, I regret paying"],
    ("price", "neutral"): ["the price is about what I expected", "costs the same as elsewhere"],
    ("price", "positive"): ["great value for the money", "a bargain at this price"],
    ("quality", "negative"): ["it broke after two days", "feels cheap and flimsy"],
    ("quality", "neutral"): ["the build is okay, nothing special", "average materials overall"],
    ("quality", "positive"): ["solid and well made", "the finish is excellent"],
    ("delivery", "negative"): ["arrived three weeks late", "the box came crushed"],
    ("delivery", "neutral"): ["shipping took the usual week", "delivered on the quoted day"],
    ("delivery", "positive"): ["arrived the next morning", "fast shipping, well packed"],
    ("service", "negative"): ["support never answered my emails", "the agent was rude to me"],
    ("service", "neutral"): ["support replied after a few days", "the help desk was fine"],
    ("service", "positive"): ["the support team was wonderful", "they fixed my issue in minutes"],
}
_ITEMS = ["lamp", "kettle", "backpack", "desk chair", "blender", "jacket", "router", "tent",
          "speaker", "mixer", "drill", "monitor"]  # fmt: skip
_OPENERS = ["", "Bought the {item}.", "About my new {item}:", "Review of the {item}.", "So,"]
_CLOSERS = ["", "Would buy again?", "Just saying.", "That's all.", "Thanks."]
_SUMMARY = {"negative": "Unhappy with the {topic}.", "neutral": "Neutral on the {topic}.",
            "positive": "Happy with the {topic}."}  # fmt: skip

PROMPT = """{#- variables: text, topic_values, sentiment_values
    text              (str)        the review, cleaned by prep
    topic_values      (list[str])  the topic labels
    sentiment_values  (list[str])  the sentiment labels -#}
Read the review. Answer with JSON: {"topic": one of {{ topic_values | join("|") }}, "sentiment": one of {{ sentiment_values | join("|") }}, "summary": one sentence}.
Review: {{ text }}
Answer:
"""

PARAMS: dict = {
    "task": {
        "prompt": "prompts/review.jinja",
        "inputs": {"text": {"kind": "text", "max_chars": 400}},
        "outputs": {
            "topic": {"kind": "label", "values": list(TOPICS)},
            "sentiment": {"kind": "label", "values": list(SENTIMENTS), "ordered": True},
            "summary": {"kind": "text", "max_chars": 200},
        },
    },
    "prep": {
        "columns": {"text": "review_text"},
        "id_column": "uid",
        "split_column": "split",
        "pin_files": {},
        "seed": 7,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "unicode_form": "NFKC",
        "redact": ["EMAIL", "PHONE", "CARD"],
        "max_rejected_fraction": 0.2,
        "report_examples": 3,
    },
    "base": {
        "model": "tiny",
        "revision": None,
        "trust_remote_code": False,
        "tiny": {
            "vocab_size": 512, "hidden_size": 32, "layers": 2, "heads": 2,
            "intermediate_size": 64, "context_length": 1024, "block_length": 64,
            "batch_size": 8, "steps": 6, "learning_rate": 0.003, "warmup_steps": 2, "seed": 0,
        },
    },
    "train": {
        "seed": 0,
        # Dropout, gradient accumulation and embeddings trained in full are on so resume and
        # multi-process tests cover them.
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1,
                 "target_modules": ["q_proj", "v_proj", "down_proj"],
                 "modules_to_save": ["embed_tokens"]},
        "learning_rate": 0.003, "schedule": "cosine", "warmup_steps": 2, "weight_decay": 0.0,
        "token_dropout": 0.0, "references": "all", "token_budget": None, "patience": None,
        "label_weights": "none", "epochs": 100, "max_steps": 24, "batch_size": 4,
        "grad_accum": 2, "max_length": 1024,
        "max_grad_norm": 1.0, "precision": "auto", "eval_every": 6, "checkpoint_every": 4,
        "log_every": 2,
    },
    "decoding": {"max_new_tokens": 48, "do_sample": False, "temperature": 1.0, "top_p": 1.0,
                 "seed": 0},
    "eval": {"batch_size": 16,
             "classical": {"analyzer": "word", "ngram_min": 1, "ngram_max": 2, "C": 10.0}},
    "gate": {"min": {"json_valid": 0.0}, "max_drop": {"topic_accuracy": 0.05},
             "confidence": 0.95},
    "report": {"examples": 3},
    "serve": {"name": "reviews-model", "merge": False, "max_batch_size": 8,
              "max_items": 8, "max_tokens": 64, "max_queue": 4,
              "retry_after_s": 1, "api_key_env": "LLMOPS_TEST_API_KEY", "log_uri": "",
              "logs": {"file_mb": 64, "retain_days": 30, "retain_mb": 2048,
                       "refusals_per_s": 10, "feedback_window": 1000,
                       "sink_batch": 50, "sink_flush_s": 0.5, "sink_buffer": 1000},
              "timeouts": {"headers_s": 3, "body_s": 3, "idle_s": 2, "ready_s": 5}},
    "monitor": {"window_hours": 24, "min_requests": 20, "drift_share": 0.5,
                "max_unparsed_share": 0.2, "max_error_share": 0.05, "max_p99_ms": 5000,
                "max_correction_share": 0.5},
    "harvest": {"window_hours": 168, "min_corrections": 3, "sample_unparsed": 10},
}  # fmt: skip


def merged(base: dict, override: dict) -> dict:
    """`base` with `override`'s keys replaced, recursively."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def write_split_params(root: Path, params: dict) -> None:
    """`params` as a project laid out like the repository keeps them: the task and the
    data's shape in task.yaml, the knobs in params.yaml (llmops.config.params.DECLARED)."""
    from llmops.config.params import DECLARED, TASK_FILE

    knobs = {k: dict(v) if isinstance(v, dict) else v for k, v in params.items()}
    declared = {"task": knobs.pop("task")}
    declared["prep"] = {k: knobs["prep"].pop(k) for k in DECLARED["prep"] if k in knobs["prep"]}
    (root / TASK_FILE).write_text(yaml.safe_dump(declared, sort_keys=False))
    (root / "params.yaml").write_text(yaml.safe_dump(knobs, sort_keys=False))


def write_params(path: Path, override: dict | None = None, base: dict = PARAMS) -> Path:
    """A params file: `base` (the reviews task at test sizes) with `override` applied."""
    path.write_text(yaml.safe_dump(merged(base, override or {}), sort_keys=False))
    return path


def review(rng: random.Random, topic: str, sentiment: str) -> str:
    item = rng.choice(_ITEMS)
    said = rng.choice(_SAYS[topic, sentiment])
    opener = rng.choice(_OPENERS).format(item=item)
    text = " ".join(x for x in (opener, f"The {item}: {said}.", rng.choice(_CLOSERS)) if x)
    return text if rng.random() > 0.3 else text.lower()


def distinct(n: int, draw: Callable[[int], tuple[str, dict]]) -> list[dict]:
    """`n` rows from `draw(i)` (i: the rows kept so far), each (key, row); a row whose key
    was drawn before is drawn again, so the inputs are distinct."""
    rows, seen = [], set()
    while len(rows) < n:
        key, row = draw(len(rows))
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def review_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` distinct raw review rows (columns uid, review_text, topic, sentiment, summary)."""
    rng = random.Random(seed)

    def draw(i: int) -> tuple[str, dict]:
        topic, sentiment = rng.choice(TOPICS), rng.choice(SENTIMENTS)
        text = review(rng, topic, sentiment) + f" (order {rng.randint(1000, 99999)})"
        return text.casefold(), {
            "uid": f"R{i:05d}", "review_text": text, "topic": topic,
            "sentiment": sentiment, "summary": _SUMMARY[sentiment].format(topic=topic),
        }  # fmt: skip

    return distinct(n, draw)


def write_jsonl(path: Path, rows: list[dict | str | bytes]) -> Path:
    """JSON Lines: dicts are dumped, str/bytes written as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(r).encode() if isinstance(r, dict) else r if isinstance(r, bytes) else r.encode()
        for r in rows
    ]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def project_files(root: Path, rows: list[dict], override: dict | None = None) -> Path:
    """A folder laid out like the repository for the reviews task: params, prompt, raw data."""
    root.mkdir(parents=True, exist_ok=True)
    write_params(root / "params.yaml", override)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "prompts" / "review.jinja").write_text(PROMPT)
    write_jsonl(root / "data" / "raw" / "reviews.jsonl", rows)
    return root


# --- the classification-only task ---------------------------------------------------------

_INTENT_SAYS = {
    "card_lost": ["I lost my {thing} card", "my {thing} card is gone", "can't find my {thing} card"],
    "card_arrival": ["when will my {thing} card arrive", "my new {thing} card hasn't come",
                     "is my {thing} card in the post"],
    "balance": ["what is my {thing} balance", "how much is on my {thing} account",
                "show the {thing} balance"],
    "transfer": ["send money from my {thing} account", "move cash to {thing}",
                 "make a {thing} transfer"],
    "refund": ["I want my {thing} money back", "refund the {thing} charge",
               "get a refund for {thing}"],
    "pin_change": ["change the PIN of my {thing} card", "new PIN for {thing}",
                   "reset my {thing} PIN"],
    "exchange_rate": ["what rate for {thing} currency", "how much is {thing} in euros",
                      "the {thing} exchange rate"],
    "top_up": ["add money to my {thing} wallet", "top up {thing}", "load cash onto {thing}"],
    "account_close": ["close my {thing} account", "delete the {thing} account for good",
                      "shut down {thing}"],
    "fee": ["why was I charged a {thing} fee", "what is this {thing} fee",
            "explain the {thing} charge"],
}  # fmt: skip
INTENTS = tuple(_INTENT_SAYS)
_THINGS = ["visa", "travel", "savings", "joint", "kids", "business", "virtual", "premium",
           "student", "gold", "metal", "backup"]  # fmt: skip
_HELD_OUT_THINGS = ["holiday", "family", "second", "shared"]


def intent_rows(n: int, seed: int = 0, held_out: bool = False) -> list[dict]:
    """`n` distinct rows {utterance, intent}; held-out rows use other fillers."""
    rng = random.Random(seed)
    things = _HELD_OUT_THINGS if held_out else _THINGS

    def draw(i: int) -> tuple[str, dict]:
        intent = INTENTS[i % len(INTENTS)]
        text = rng.choice(_INTENT_SAYS[intent]).format(thing=rng.choice(things))
        text = f"{rng.choice(['', 'hi, ', 'please ', 'hello '])}{text} #{rng.randint(1, 9999)}"
        return text, {"utterance": text.strip(), "intent": intent}

    return distinct(n, draw)


INTENT_PROMPT = """{#- variables: text, label_values
    text          (str)        the utterance, cleaned by prep
    label_values  (list[str])  the intents -#}
Classify the request. Answer with JSON: {"label": one of {{ label_values | join("|") }}}.
Request: {{ text }}
Answer:
"""
# The classification-only task: CSV columns `utterance` and `intent` map to the fields
# `text` and `label`; the official test file is pinned whole; ids are derived.
INTENT_PARAMS: dict = {
    **PARAMS,
    "task": {
        "prompt": "prompts/intent.jinja",
        "inputs": {"text": {"kind": "text", "max_chars": 300}},
        "outputs": {"label": {"kind": "label", "values": list(INTENTS)}},
    },
    "prep": {
        **PARAMS["prep"],
        "columns": {"text": "utterance", "label": "intent"},
        "id_column": None,
        "split_column": None,
        "pin_files": {"test": ["official/*.csv"]},
        "test_fraction": 0.0,
    },
    "decoding": {**PARAMS["decoding"], "max_new_tokens": 24},
    "gate": {"min": {"json_valid": 0.0}, "max_drop": {"label_accuracy": 0.05}, "confidence": 0.95},
}


# --- a large label set: verb x noun intents ------------------------------------------------

_VERBS = {
    "check": ["check", "look at", "see"], "cancel": ["cancel", "stop", "call off"],
    "change": ["change", "update", "edit"], "report": ["report", "flag", "complain about"],
    "request": ["request", "order", "ask for"], "explain": ["explain", "clarify", "describe"],
    "activate": ["activate", "turn on", "enable"], "freeze": ["freeze", "block", "pause"],
}  # fmt: skip
_NOUNS = {
    "card": ["card", "debit card"], "transfer": ["transfer", "payment"], "pin": ["pin", "code"],
    "address": ["address", "home address"], "limit": ["limit", "spending cap"],
    "statement": ["statement", "monthly statement"], "loan": ["loan", "credit line"],
    "account": ["account", "profile"], "fee": ["fee", "charge"], "refund": ["refund", "money back"],
}  # fmt: skip
MANY_LABELS = tuple(f"{v}_{n}" for v in _VERBS for n in _NOUNS)  # 80 labels
_FILLER = ["please", "asap", "today", "thanks", "for my husband", "on the app", "online",
           "as soon as you can", "if possible", "right now", "quickly", "again"]  # fmt: skip


def many_label_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` distinct rows {text, label} over the 80 labels of MANY_LABELS."""
    rng = random.Random(seed)

    def draw(_: int) -> tuple[str, dict]:
        label = MANY_LABELS[rng.randrange(len(MANY_LABELS))]
        verb, noun = label.split("_", 1)
        words = [
            rng.choice(["", "hi,", "hello,", "hey"]),
            "I want to",
            rng.choice(_VERBS[verb]),
            "my",
            rng.choice(_NOUNS[noun]),
            *rng.sample(_FILLER, 2),
            str(rng.randint(1, 99999)),
        ]
        text = " ".join(w for w in words if w)
        return text, {"text": text, "label": label}

    return distinct(n, draw)


MANY_LABEL_PROMPT = """{#- variables: text
    text  (str)  the request, cleaned by prep -#}
Answer with JSON: {"label": the label}.
Text: {{ text }}
Answer:
"""
# The many-label task: JSONL rows {text, label}, split by prep (10% val, 10% test); the
# prompt does not list the labels (as `make init` writes it for so many).
MANY_LABEL_PARAMS: dict = {
    **INTENT_PARAMS,
    "task": {
        "prompt": "prompts/many.jinja",
        "inputs": {"text": {"kind": "text", "max_chars": 300}},
        "outputs": {"label": {"kind": "label", "values": list(MANY_LABELS)}},
    },
    "prep": {**INTENT_PARAMS["prep"], "columns": {}, "pin_files": {}, "test_fraction": 0.1},
}


def run_prep(root: Path, params: Path | None = None, raw: Path | None = None) -> Path:
    """The prep stage's command on a project folder (raw data from `raw` or its data/raw),
    as dvc.yaml runs it; the folder its outputs went to (root/out)."""
    from llmops.stages.prep import main

    out = root / "out"
    main(["--raw", str(raw or root / "data" / "raw"), "--out", str(out / "prepared"),
          "--quarantine", str(out / "q"), "--report", str(out / "report"),
          "--metrics", str(out / "metrics.json"), "--params", str(params or root / "params.yaml")])  # fmt: skip
    return out
