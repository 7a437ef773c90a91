"""`make chaos` (the package's docstring says what it does)."""

from __future__ import annotations

import os
import sys
from typing import Any

from loadtest.chaos import edge, pause
from loadtest.chaos.checks import run_scenario
from loadtest.chaos.config import CHAOS_ENV, FAULT_S, launcher
from loadtest.chaos.report import edge_report, table, verdict, write_report
from loadtest.chaos.scenarios import FINAL, SCENARIOS, Scenario
from stack.keys import ensure_key
from stack.settings import load_stack


def main() -> int:
    """Start a stack of its own, run every scenario, report, tear the stack down."""
    os.environ.update(CHAOS_ENV)
    launcher("up")
    try:
        stack = load_stack()
        rows: list[dict[str, Any]] = []
        pause_rows: list[dict[str, Any]] = []
        only = os.environ.get("CHAOS_ONLY", "")
        pauses = pause.SCENARIOS

        def run(scenario: Scenario) -> None:
            paused = scenario in pauses
            row = run_scenario(stack, scenario, pause.PAUSE_S if paused else FAULT_S)
            (pause_rows if paused else rows).append(row)
            print(table([row]).splitlines()[-1], flush=True)
            for line in row["evidence"]:
                print(f"    {line}", file=sys.stderr, flush=True)

        for scenario in [s for s in [*SCENARIOS, *pauses] if only in s.name]:
            run(scenario)
        # The edge's rows measure a steady state: on the whole stack, before FINAL loses the
        # primary for good (its replicas' settings are what the edge's lag rows change).
        edge_rows = edge.rows(stack, ensure_key(stack, "chaos", "critical"), only)
        if only in FINAL.name:
            run(FINAL)
    finally:
        launcher("clean")
    print("\n" + table(rows + pause_rows) + "\n\n" + edge.table(edge_rows))
    if os.environ.get("CHAOS_REPORT", "1") == "1":
        # A section is rewritten only when every one of its rows ran (CHAOS_ONLY runs a few).
        if len(rows) == len(SCENARIOS) + 1:
            write_report(rows, "make chaos")
        if len(pause_rows) == len(pause.SCENARIOS):
            pause.report(pause_rows)
        if len(edge_rows) == len(edge.SCENARIOS):
            edge_report(edge.table(edge_rows))
    edge_ok = all(edge.met(r["scenario"], r["result"]) for r in edge_rows)
    return 0 if all(verdict(r) for r in rows + pause_rows) and edge_ok else 1


if __name__ == "__main__":
    sys.exit(main())
