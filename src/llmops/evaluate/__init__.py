"""Scoring answers: the metrics per task field (`metrics`), the classical floor
(`classical`), per-example predictions (`predictions`), paired statistics and noise
(`stats`), the quality gates (`gate`) and the baseline they compare with (`baseline`).

May import: config.
"""
