"""nginx's access log since a point, across its rotations, and the share of it the edge answered."""

from __future__ import annotations

import json
import time
from pathlib import Path


def log_position(log: Path) -> tuple[int, int]:
    """Where LOG ends now: (its inode, its size)."""
    info = log.stat()
    return info.st_ino, info.st_size


def logged_since(log: Path, start: tuple[int, int]) -> list[bytes]:
    """The lines written to LOG since START (log_position), across its rotations: the log may
    have become LOG.1 (stack/logrotate.py, at LOG_MAX_BYTES) while the runs wrote it."""
    inode, offset = start
    files = [log.with_name(f"{log.name}.{n}") for n in range(9, 0, -1)] + [log]
    files = [f for f in files if f.exists()]
    first = next((i for i, f in enumerate(files) if f.stat().st_ino == inode), None)
    if first is None:  # rotated out of reach: count what the current file holds
        first, offset = len(files) - 1, 0
    lines: list[bytes] = []
    for n, path in enumerate(files[first:]):
        with path.open("rb") as opened:
            opened.seek(offset if n == 0 else 0)
            lines += opened.readlines()
    return lines


def edge_share(log: Path, start: tuple[int, int]) -> float:
    """The share of the requests logged in LOG since START that the edge answered."""
    time.sleep(1.2)  # nginx writes its buffered access log once a second
    statuses = [
        json.loads(line).get("edge", "")
        for line in logged_since(log, start)
        if line.startswith(b"{")
    ]
    hits = sum(1 for status in statuses if status in ("HIT", "STALE", "UPDATING"))
    share = hits / max(len(statuses), 1)
    print(f"  edge answered {share:.0%} of {len(statuses):,} requests", flush=True)
    return share
