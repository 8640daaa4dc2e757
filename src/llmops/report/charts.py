"""PNG charts for reports: matplotlib set up for files only, saved byte-reproducibly.

matplotlib is imported when a chart is drawn, so importing a report module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

META = {"Software": None}  # keep the matplotlib version out of the PNG bytes


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")  # no display; files only
    # Text from the data (label values, field names) is drawn as written: "$..$" in a label
    # would otherwise be parsed as math, and a malformed one stops the stage.
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def save(plt, fig, path: Path) -> None:
    """Write `fig` to `path` (PNG, 80 dpi) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata=META)
    plt.close(fig)
