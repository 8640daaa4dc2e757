"""PII becomes typed placeholders; order numbers, amounts and dates survive."""

from __future__ import annotations

import pytest

from llmops.redact import redact

ALL = {"EMAIL", "PHONE", "CARD"}


@pytest.mark.parametrize(
    ("text", "expected", "counts"),
    [
        ("write to jane.doe+x@mail.example.co.uk today", "write to <EMAIL> today", {"EMAIL": 1}),
        ("Call +1 (415) 555-0132 or 415-555-0132.", "Call <PHONE> or <PHONE>.", {"PHONE": 2}),
        ("uk office +44 20 7946 0958", "uk office <PHONE>", {"PHONE": 1}),
        ("tel 4155550132.", "tel <PHONE>.", {"PHONE": 1}),
        ("card 4111 1111 1111 1111 please", "card <CARD> please", {"CARD": 1}),
        ("card 4111-1111-1111-1111", "card <CARD>", {"CARD": 1}),
        ("amex 378282246310005", "amex <CARD>", {"CARD": 1}),
        ("order ORD-482913 on 2026-11-28 for $49.99", "order ORD-482913 on 2026-11-28 for $49.99", {}),
        ("version v2.13.0 and 1,299.99 and 3 items and #12345678", None, {}),
    ],
)  # fmt: skip
def test_redaction_rules(text, expected, counts):
    out, found = redact(text, ALL)
    assert out == (text if expected is None else expected)
    assert dict(found) == counts


def test_only_requested_kinds_are_redacted():
    text = "a@b.io 415-555-0132 4111111111111111"
    assert redact(text, {"EMAIL"})[0] == "<EMAIL> 415-555-0132 4111111111111111"
    assert redact(text, {"CARD"})[0] == "a@b.io 415-555-0132 <CARD>"
    assert redact(text, set()) == (text, {})


def test_digits_inside_an_email_are_not_a_phone():
    assert redact("john4155550132@example.com", ALL) == ("<EMAIL>", {"EMAIL": 1})


def test_adjacent_numbers_are_judged_one_by_one():
    out, found = redact("call 415-555-0132 4111 1111 1111 1111 or 12 34", ALL)
    assert out == "call <PHONE> <CARD> or 12 34"
    assert dict(found) == {"PHONE": 1, "CARD": 1}
