"""Deterministic sample data for the worked example: support-ticket triage exports.

`python -m examples.ticket_triage.generate --out data/raw` writes three JSONL exports with clean
tickets, pinned held-out test phrasings and planted defects; see `generate.generate`.
"""

from examples.ticket_triage.templates import CATEGORIES, PRIORITIES

__all__ = ["CATEGORIES", "PRIORITIES"]
