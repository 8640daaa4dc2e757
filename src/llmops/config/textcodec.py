"""How a text file's first bytes tell its encoding: byte-order marks, and UTF-16/UTF-32
written without one (ASCII text then has NUL bytes in fixed lanes).

`bom_codec(head)` is the Python codec a byte-order mark names (or None); `wide_codec(head)`
names "UTF-16" or "UTF-32" for such text without a mark (or None). Standard library only:
the params reader (`llmops.config.paramsfile`, a leaf) and the raw data reader
(`llmops.data.sources`) both use it.
"""

from __future__ import annotations

import codecs

# Longest first: UTF-32-LE's mark starts with UTF-16-LE's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_codec(head: bytes) -> str | None:
    """utf-8-sig, utf-16 or utf-32 when `head` starts with that byte-order mark."""
    return next((name for bom, name in BOMS if head.startswith(bom)), None)


def wide_codec(head: bytes) -> str | None:
    """UTF-32 or UTF-16 when `head` looks like mostly-ASCII text in it without a mark: a
    NUL in three of every four bytes (UTF-32), or in one of every two (UTF-16), each in the
    same lanes throughout. UTF-8 text has NULs only by accident."""
    if len(head) < 8:
        return None

    def nul_lanes(width: int) -> int:  # lanes (offset mod width) that are nearly all NUL
        return sum(head[i::width].count(0) > 0.9 * len(head[i::width]) for i in range(width))

    if nul_lanes(4) == 3:
        return "UTF-32"
    return "UTF-16" if nul_lanes(2) == 1 else None
