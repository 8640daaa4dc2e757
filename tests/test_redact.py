"""PII becomes typed placeholders; order numbers, amounts and dates survive."""

from __future__ import annotations

import json

import pytest

from llmops.records import normalize
from llmops.redact import redact, redact_raw

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
        # phone shapes
        ("(415)555-0132", "<PHONE>", {"PHONE": 1}),
        ("415-555-0132x12 or 415.555.0132 ext. 7", "<PHONE> or <PHONE>", {"PHONE": 2}),
        ("415–555–0132", "<PHONE>", {"PHONE": 1}),
        ("+44 (0) 20 7946 0958 / 0044 20 7946 0958", "<PHONE> / <PHONE>", {"PHONE": 2}),
        ("01 23 45 67 89", "<PHONE>", {"PHONE": 1}),
        ("call 415 555 0132 3 times", "call <PHONE> 3 times", {"PHONE": 1}),
        # card shapes: groups of 4-6 digits, or one Luhn-valid run
        ("4111/1111/1111/1111", "<CARD>", {"CARD": 1}),
        ("4111\u00ad1111\u00ad1111\u00ad1111", "<CARD>", {"CARD": 1}),
        ("3782 822463 10005", "<CARD>", {"CARD": 1}),
        ("4111 1111 1111 1112", "<CARD>", {"CARD": 1}),  # mistyped but written as a card
        # emails with non-ASCII or hidden characters
        ("jane.doe@bücher.de and jörg@example.de", "<EMAIL> and <EMAIL>", {"EMAIL": 2}),
        ("jane\u200b@example.com", "<EMAIL>", {"EMAIL": 1}),
        # numbers that are not PII stay, since replies depend on them
        ("order #123456789", None, {}),
        ("Transaction ID: 20261128143015", None, {}),  # 14 digits, fails the Luhn check
        ("invoice 2026-000123456", None, {}),
        ("IP 192.168.100.200, build 10.0.19045.3693", None, {}),
        ("ordered on 2026-11-28 2026-12-01", None, {}),
        ("between 2024 2025 2026", None, {}),
        ("4111111111111112", None, {}),  # one run of 16 digits that fails the Luhn check
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


def test_raw_json_lines_are_redacted_value_by_value():
    line = json.dumps(
        {"message": "Call me on\n4155550132 or card\n4111111111111111", "n": [1, "a@b.io"]}
    )
    assert json.loads(redact_raw(line, ALL)) == {
        "message": "Call me on\n<PHONE> or card\n<CARD>",
        "n": [1, "<EMAIL>"],
    }


def test_raw_text_that_is_not_json_is_redacted_across_escapes():
    # A broken line from an exporter that escapes non-ASCII: \n, \u00a0 and \u2013 join PII.
    broken = '{"message": "back on\\n4155550132\\tor 4111\\u00a01111 1111 1111, 415\\u2013555\\u20130132", '
    assert redact_raw(broken, ALL) == '{"message": "back on <PHONE> or <CARD>, <PHONE>", '


def test_raw_lines_with_lone_surrogates_stay_writable():
    out = redact_raw('{"message": "hi \\ud800 a@b.io"}', ALL)
    out.encode("utf-8")
    assert json.loads(out) == {"message": "hi \ud800 <EMAIL>"}


def test_long_runs_of_small_numbers_are_left_alone():
    digits = " ".join("7" * 3000)
    assert redact(digits, ALL) == (digits, {})


# Realistic PII in the shapes exports carry it, and how it must come out. Each is checked on
# both paths prep uses: cleaned kept rows (normalize, then redact) and quarantined raw lines.
PII_SHAPES = [
    ("call 415\u00a0555\u00a00132", "call <PHONE>"),
    ("4111  1111  1111  1111", "<CARD>"),
    ("415\n555-0132", "<PHONE>"),
    ("415－555－0132 or 415−555−0132", "<PHONE> or <PHONE>"),
    ("+33 6 12 34 56 78, +33 (0)6 12 34 56 78, 0033 6 12 34 56 78", "<PHONE>, <PHONE>, <PHONE>"),
    ("+61 2 9876 5432 / +81 3-1234-5678 / +353 1 234 5678", "<PHONE> / <PHONE> / <PHONE>"),
    ("1-415-555-0132 or 1.800.555.0199", "<PHONE> or <PHONE>"),
    ("4111111111111111,12/26", "<CARD>,12/26"),
    ("call 415-555-0132,415-555-0199", "call <PHONE>,<PHONE>"),
    ("415-555-0132/415-555-0199", "<PHONE>/<PHONE>"),
    ("07700 900123/07700 900124", "<PHONE>/<PHONE>"),
    ("Tel.4155550132", "Tel.<PHONE>"),
    ("(call 415-555-0132) (4111 1111 1111 1111)", "(call <PHONE>) (<CARD>)"),
    ("o'brien@example.com", "<EMAIL>"),
    ("415\u200d555\u200d0132 jo\u200dhn@example.com", "<PHONE> <EMAIL>"),
]


@pytest.mark.parametrize(("text", "expected"), PII_SHAPES)
def test_pii_shapes_are_redacted_in_kept_and_quarantined_rows(text, expected):
    assert redact(normalize(text, "NFKC"), ALL)[0] == normalize(expected, "NFKC")
    assert json.loads(redact_raw(json.dumps({"message": text}), ALL))["message"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28 14:30:00", "charged on 11/28/2026 10:45 AM", "on 28.11.2026 14:30",
        "9400 1000 0000 0000 0000 00", "FedEx 7712 3456 7890", "DHL 1234 5678 90",
        "order 1234567890", "Order No. 1234567890", "ticket #123456, ref 987654321",
        "invoice 2026-000123", "ticket 20261128-0001", "serial SN 1234-5678-9012",
        "ZIP 94105-1234", "1234567890128",
    ],
)  # fmt: skip
def test_reply_details_are_not_mistaken_for_pii(text):
    assert redact(text, ALL) == (text, {})


def test_json_numbers_in_raw_lines_are_redacted():
    line = '{"id": "T1", "phone": 4155550132, "card": 4111111111111111, "qty": 3}'
    assert json.loads(redact_raw(line, ALL)) == {
        "id": "T1", "phone": "<PHONE>", "card": "<CARD>", "qty": 3,
    }  # fmt: skip
