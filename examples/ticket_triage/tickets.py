"""Compose one clean support ticket: message, labels and the reply that goes with them.

A message is a template with its slots filled, one urgency cue for the priority, and some
seeded noise (filler, greeting and sign-off, PII, typos, case, whitespace). The reply is a
pure function of category, priority and the slots (order number, product, customer name).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from examples.ticket_triage import perturb
from examples.ticket_triage.perturb import PII_KINDS, Segment
from examples.ticket_triage.phrases import (
    CUES,
    DATES,
    DEVICES,
    FILLERS,
    GREETINGS,
    HELD_OUT_CUES,
    MEDIUM_WITHOUT_CUE,
    NAMED_GREETINGS,
    NAMED_SIGN_OFFS,
    NAMES,
    ORDER_LINES,
    PII_LINES,
    PRODUCTS,
    SIGN_OFFS,
)
from examples.ticket_triage.templates import (
    HELD_OUT_TEMPLATES,
    ORDER_CATEGORIES,
    PRIORITY_CLAUSES,
    REPLIES,
    TRAIN_TEMPLATES,
)
from llmops.config.textnorm import normalize
from llmops.data.records import dedupe_key

# Rows get their id when written, in file order; until then they carry this marker.
PENDING_ID = "T??????"
CHANNELS: tuple[str, ...] = ("email", "chat", "web")
# Clean messages stay far below any sensible max_message_chars (the default is 2000).
CLEAN_MAX_CHARS = 600
_PII_WEIGHTS = {"email": 45, "phone": 35, "card": 20}


@dataclass(frozen=True)
class Ticket:
    """A clean row plus what was planted in it."""

    row: dict[str, str]
    key: str  # prep's dedupe key of the redacted message
    pii: dict[str, int]  # PII kind -> occurrences in the message
    template: tuple[str, bool, int]  # (category, held out, index in its template tuple)


def reply_for(category: str, priority: str, slots: dict[str, str]) -> str:
    """The first reply to a ticket; depends only on its labels and slot values."""
    with_order, without_order = REPLIES[category]
    product = slots.get("product")
    body = (with_order if "order" in slots else without_order).format(
        order=slots.get("order", ""),
        for_product=f" for the {product}" if product else "",
        about_product=f" about the {product}" if product else "",
    )
    greeting = f"Hi {slots['name']}," if "name" in slots else "Hi there,"
    return f"{greeting} {body} {PRIORITY_CLAUSES[priority]}"


def _fill(
    rng: random.Random, template: str, slots: dict[str, str], products: tuple[str, ...] = PRODUCTS
) -> list[Segment]:
    """Template text as segments, drawing a value for each slot not already in `slots`."""
    makers = {
        "order": lambda: f"ORD-{rng.randint(100000, 999999)}",
        "product": lambda: rng.choice(products),
        "amount": lambda: f"${rng.randint(5, 499)}.{rng.choice(('00', '49', '95', '99'))}",
        "date": lambda: rng.choice(DATES),
        "name": lambda: rng.choice(NAMES),
    }
    segments: list[Segment] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            segments.append(("text", literal))
        if field is not None:
            if field not in slots:
                slots[field] = makers[field]()
            segments.append(("slot", slots[field]))
    return segments


def _cue(rng: random.Random, priority: str, held_out: bool) -> str | None:
    """One urgency cue for `priority`; held-out cues only for test rows."""
    if priority == "medium" and rng.random() < MEDIUM_WITHOUT_CUE:
        return None
    return rng.choice(CUES[priority] + (HELD_OUT_CUES[priority] if held_out else ()))


def _pii_lines(rng: random.Random, name: str | None, rate: float) -> list[list[Segment]]:
    """Zero, one or (rarely) two sentences that carry an email, phone or card number."""
    if rng.random() >= rate:
        return []
    lines = []
    for _ in range(2 if rng.random() < 0.2 else 1):
        kind = rng.choices(list(_PII_WEIGHTS), weights=list(_PII_WEIGHTS.values()))[0]
        if kind == "email":
            value = perturb.fake_email(rng, name or rng.choice(NAMES))
        else:
            value = perturb.fake_phone(rng) if kind == "phone" else perturb.fake_card(rng)
        before, after = rng.choice(PII_LINES[kind]).split("{value}")
        lines.append([("text", before), (kind, value), ("text", after)])
    return lines


def _sentences(
    rng: random.Random, category: str, priority: str, held_out: bool, pii_rate: float
) -> tuple[list[list[Segment]], dict[str, str], int]:
    """Body, order line, cue, filler and PII as sentences; the slots; the template's index."""
    templates = (HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES)[category]
    index = rng.randrange(len(templates))
    slots: dict[str, str] = {}
    products = DEVICES if category == "technical_issue" else PRODUCTS
    sentences = [_fill(rng, templates[index], slots, products)]
    if category in ORDER_CATEGORIES and "order" not in slots and rng.random() < 0.25:
        sentences.append(_fill(rng, rng.choice(ORDER_LINES), slots))
    cue = _cue(rng, priority, held_out)
    if cue and cue.endswith(":"):
        sentences[0] = [("text", cue + " "), *sentences[0]]
    elif cue:
        sentences.insert(0 if rng.random() < 0.35 else len(sentences), [("text", cue)])
    if rng.random() < 0.25:
        for filler in rng.sample(FILLERS, 2 if rng.random() < 0.1 else 1):
            sentences.insert(rng.choice((0, len(sentences))), [("text", filler)])
    if rng.random() < 0.45:  # the customer signs with a first name; _frame places it
        slots["name"] = rng.choice(NAMES)
    for line in _pii_lines(rng, slots.get("name"), pii_rate):
        sentences.insert(rng.randint(1, len(sentences)), line)
    return sentences, slots, index


def _frame(rng: random.Random, body: list[Segment], name: str | None) -> list[Segment]:
    """Wrap the body in a greeting and/or sign-off; a named customer appears in at least one."""
    named = rng.choice(("greeting", "sign_off", "both")) if name else ""
    if named in ("greeting", "both"):
        greeting: str | None = rng.choice(NAMED_GREETINGS)
    else:
        greeting = rng.choice(GREETINGS) if rng.random() < 0.2 else None
    if named in ("sign_off", "both"):
        sign_off: str | None = rng.choice(NAMED_SIGN_OFFS)
    else:
        sign_off = rng.choice(SIGN_OFFS) if rng.random() < 0.2 else None
    slots = {"name": name} if name else {}
    segments = list(body)
    if greeting:
        segments = [*_fill(rng, greeting, slots), ("text", rng.choice((" ", "\n"))), *segments]
    if sign_off:
        segments += [("text", rng.choice((" ", "\n"))), *_fill(rng, sign_off, slots)]
    return segments


def _add_noise(rng: random.Random, segments: list[Segment]) -> list[Segment]:
    """Typos, missing punctuation, case and whitespace noise, each on a share of rows."""
    if rng.random() < 0.15:
        segments = perturb.add_typos(rng, segments, rng.randint(1, 2))
    if rng.random() < 0.08:
        segments = perturb.drop_punctuation(segments)
    case = rng.random()
    if case < 0.09:  # 6% all lowercase, 3% ALL CAPS
        segments = perturb.change_case(segments, upper=case < 0.03)
    if rng.random() < 0.08:
        segments = perturb.stretch_whitespace(rng, segments)
    if rng.random() < 0.05:
        segments = perturb.pad(rng, segments)
    return segments


def compose(
    rng: random.Random, category: str, priority: str, held_out: bool, pii_rate: float
) -> Ticket | None:
    """One clean ticket, or None when the draw came out longer than CLEAN_MAX_CHARS."""
    sentences, slots, index = _sentences(rng, category, priority, held_out, pii_rate)
    body: list[Segment] = []
    for sentence in sentences:
        body += [("text", " "), *sentence] if body else sentence
    segments = _add_noise(rng, _frame(rng, body, slots.get("name")))
    message = "".join(text for _, text in segments)
    if len(message) > CLEAN_MAX_CHARS:
        return None
    redacted = "".join(f"<{k.upper()}>" if k in PII_KINDS else t for k, t in segments)
    pii = {kind: sum(k == kind for k, _ in segments) for kind in PII_KINDS}
    row = {
        "id": PENDING_ID,
        "message": message,
        "category": category,
        "priority": priority,
        "reply": reply_for(category, priority, slots),
        "channel": rng.choice(CHANNELS),
    }
    if held_out:
        row["split"] = "test"
    return Ticket(row, dedupe_key(normalize(redacted, "NFKC")), pii, (category, held_out, index))
