"""Progress and table output of the launcher: short, aligned, flushed at once."""

from __future__ import annotations

import time
from collections.abc import Sequence

_started = time.monotonic()


def step(title: str, detail: str = "") -> None:
    """One line of progress, with the seconds since the command started."""
    elapsed = time.monotonic() - _started
    print(f"[{elapsed:6.1f}s] {title:<20} {detail}", flush=True)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
