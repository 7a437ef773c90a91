"""The verdict on a scenario's row, and the tables `make chaos` writes to docs/reliability.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loadtest.chaos.config import CLIENTS, FAULT_S
from loadtest.harness.docs import replace_section
from stack.settings import REPO


def verdict(row: dict[str, Any]) -> bool:
    """The expected zeros: no lost write, no stale read, no failed read (but while the entry
    point itself is replaced), and refusals (503 with Retry-After) only while the primary is
    down."""
    if (row["lost writes"] and not row.get("loss_possible")) or row["stale reads"]:
        return False
    if row.get("lost events") and not row.get("loss_possible"):
        return False
    if row.get("problem"):
        return False
    if row.get("slowest_bound_s") is not None and row["slowest s"] > row["slowest_bound_s"]:
        return False
    if row["failed reads"] and not row["entry_replaced"]:
        return False
    refusals = row["refused writes (503)"] + row["refused own reads (503)"]
    return bool(row["writes_refused_ok"] or refusals == 0)


COLUMNS = [
    "scenario",
    "requests",
    "failed reads",
    "failed writes",
    "refused writes (503)",
    "refused own reads (503)",
    "acknowledged writes",
    "lost writes",
    "lost events",
    "longest event wait s",
    "stale reads",
    "recovery s",
    "slowest s",
    "failures",
]


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the rows."""
    lines = ["| " + " | ".join(COLUMNS) + " | expected |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [str(row.get(c, "–")) for c in COLUMNS[:-1]]
        failures = [f"{k} ×{n}" for k, n in sorted(row["failures"].items())]
        cells.append(", ".join([*failures, *filter(None, [row.get("problem")])]) or "–")
        if row.get("loss_possible"):
            cells.append(f"shown: {row['lost writes']} acknowledged write(s) lost")
        else:
            cells.append("met" if verdict(row) else "**missed**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    rows: list[dict[str, Any]],
    command: str,
    section: str = "chaos",
    title: str = "Latest run",
    note: str = "",
) -> None:
    """Replace the generated SECTION of docs/reliability.md (NOTE follows the table)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"## {title}\n\n`{command}`, {stamp}, {CLIENTS} clients, {FAULT_S:.0f} s per fault."
        f"\n\n{table(rows)}\n\n{note}"
    )
    replace_section(REPO / "docs" / "reliability.md", section, body)


def edge_report(body: str) -> None:
    """Replace the edge rows' section of docs/reliability.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"## Latest run: the edge's freshness\n\n`make chaos`, {stamp} "
        "(loadtest/chaos/edge.py: 4 hot users changed while 4 anonymous readers poll them "
        f"through nginx).\n\n{body}\n"
    )
    replace_section(REPO / "docs" / "reliability.md", "chaos-edge", text)
