"""Deterministic sample data for the worked example: support-ticket triage exports.

`python -m llmops.sample_data.generate --out data/raw` writes three JSONL exports with clean
tickets, pinned held-out test phrasings and planted defects; see `generate.generate`.
"""

from llmops.sample_data.templates import CATEGORIES, PRIORITIES

__all__ = ["CATEGORIES", "PRIORITIES"]
