"""`make chaos`'s pause rows: one part at a time frozen with SIGSTOP (a paused VM, a stalled
process: its ports open, none of its code running) under the chaos load, then woken with SIGCONT.

The verdicts are the chaos table's (no lost write or event, no stale read, no failed read), plus
a bound on the slowest request where the frozen part is one the stack should route around: a
replica, Redis, a NATS node, the relay holding the lease, a queue worker, an API replica (any
other replica can answer). The primary has no such bound: writes wait for it until
`make failover`, which fences it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from loadtest.chaos.config import CLIENTS, launcher
from loadtest.chaos.faults import lease_holder, primary_returns
from loadtest.chaos.report import table
from loadtest.chaos.scenarios import Scenario
from loadtest.harness.docs import replace_section
from stack import queue, supervisor
from stack.settings import REPO, Stack

PAUSE_S = float(os.environ.get("CHAOS_PAUSE_SECONDS", "10"))
# Requests that do not need the frozen part: a read's deadline (DB_READ_DEADLINE_S) plus a retry.
ROUTED_AROUND_S = 2.0
_frozen: dict[str, int] = {}  # program -> the process group frozen


def freeze(stack: Stack, program: str) -> None:
    """SIGSTOP PROGRAM's whole process group (gunicorn's workers with their master)."""
    pid = supervisor.running_pids(stack, [program])[program]
    _frozen[program] = pid
    os.killpg(pid, signal.SIGSTOP)


def wake(program: str) -> None:
    """SIGCONT what freeze() stopped (gone already when a fence killed it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(_frozen.pop(program), signal.SIGCONT)


def frozen_program(pick: Any, bound: float | None, name: str) -> Scenario:
    """A row that freezes the program PICK(stack) names, for PAUSE_S, then wakes it."""
    chosen: dict[str, str] = {}

    def inject(stack: Stack) -> None:
        chosen["program"] = pick(stack)
        freeze(stack, chosen["program"])

    return Scenario(name, inject, lambda s: wake(chosen["program"]), slowest_bound_s=bound)


def freeze_primary_and_fail_over(stack: Stack) -> None:
    """The primary frozen; 1 s later `make failover`, which must fence it (it runs, it does not
    answer) before it promotes a replica."""
    freeze(stack, f"mysql-{stack.writer.name}")
    time.sleep(1.0)
    launcher("failover")


def primary_woken(stack: Stack) -> None:
    wake("mysql-primary")
    primary_returns(stack)


SCENARIOS = [
    frozen_program(lambda s: "mysql-replica-1", ROUTED_AROUND_S, "replica-1 frozen"),
    frozen_program(lambda s: "redis", ROUTED_AROUND_S, "Redis frozen"),
    frozen_program(queue.stream_leader_of, ROUTED_AROUND_S, "the stream leader (NATS) frozen"),
    frozen_program(lease_holder, ROUTED_AROUND_S, "the relay holding the lease frozen"),
    frozen_program(lambda s: s.workers[0], ROUTED_AROUND_S, "a queue worker frozen"),
    frozen_program(lambda s: "api-2", ROUTED_AROUND_S, "an API replica frozen (master, workers)"),
    Scenario(
        "the primary frozen, make failover (fences it), woken; back by make up and switchover",
        freeze_primary_and_fail_over,
        primary_woken,
        writes_refused=True,
    ),
]


def report(rows: list[dict[str, Any]]) -> None:
    """Replace the pause rows' section of docs/reliability.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"## Latest run: frozen parts\n\n`make chaos`, {stamp}, {CLIENTS} clients, each part "
        f"frozen {PAUSE_S:.0f} s (loadtest/chaos/pause.py; `slowest s` bounded by "
        f"{ROUTED_AROUND_S:.0f} s where the stack routes around the part).\n\n"
        f"{table(rows)}\n"
    )
    replace_section(REPO / "docs" / "reliability.md", "chaos-pause", text)
