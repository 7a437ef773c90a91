"""Memory of processes the load tools measure."""

from __future__ import annotations

from pathlib import Path

from stack import processes


def children_rss(master: int) -> int:
    """RSS in bytes of the children of process MASTER (gunicorn's workers)."""
    total = 0
    for pid, (ppid, _, _) in processes.scan().items():
        if ppid == master:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total
