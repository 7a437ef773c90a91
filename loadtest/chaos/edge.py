"""`make chaos`'s edge rows: how fresh nginx's edge stays (loadtest/freshness.py) in the steady
state and under the faults that touch it, each against the bound docs/caching.md gives it.

A row: a writer changes 4 hot users while 4 anonymous readers poll them through nginx; for each
write, the last read that began after its 2xx yet showed an older version. "final fresh": once
the writes stop, every hot user read through the edge shows its last version (no old version
was stored).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from loadtest.chaos.faults import sql, supervise
from loadtest.freshness import BOUND_S, Freshness, Load, freshness, hot_users, measured
from stack.nginx import edge_serving
from stack.settings import Stack
from stack.waiting import until

# The replicas' SQL threads held this far behind (MASTER_DELAY): no old version may show for it.
DELAY_S = 2


@dataclass(frozen=True)
class EdgeScenario:
    """A fault for the edge (None: the steady state), its bound on the worst lag, and whether
    that bound is on the p99 (the steady state's 100 ms) or on the worst write."""

    name: str
    fault: Callable[[Stack], None] | None
    bound_s: float
    on_p99: bool = False
    posts: bool = False
    writes: int = 150
    pace_s: float = 0.02
    replica_delay_s: int = 0


def delay_replicas(stack: Stack, seconds: int) -> None:
    for replica in stack.replicas:
        sql(stack, replica.name, "STOP REPLICA")
        sql(stack, replica.name, f"CHANGE MASTER TO MASTER_DELAY = {int(seconds)}")
        sql(stack, replica.name, "START REPLICA")


def kill_purger(stack: Stack) -> None:
    time.sleep(1.0)
    pid = int((stack.state / "run" / "edge-purger.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)  # supervisord starts it again


def freeze_purger(stack: Stack) -> None:
    time.sleep(1.0)
    pid = int((stack.state / "run" / "edge-purger.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)  # a paused process: no code of its runs, its lease runs out
    try:
        time.sleep(6.0)
    finally:
        os.kill(pid, signal.SIGCONT)


def stop_broker(stack: Stack) -> None:
    time.sleep(1.0)
    nodes = [node.name for node in stack.nats_nodes]
    supervise(stack, "stop", *nodes)
    time.sleep(10.0)
    supervise(stack, "start", *nodes)


SCENARIOS = [
    EdgeScenario("edge: PATCHes of hot users (steady state)", None, BOUND_S, on_p99=True),
    EdgeScenario(
        "edge: new posts, post_count (steady state)", None, BOUND_S, on_p99=True, posts=True
    ),
    EdgeScenario(
        f"edge: replicas' SQL threads {DELAY_S} s behind",
        None,
        BOUND_S,
        on_p99=True,
        writes=100,
        replica_delay_s=DELAY_S,
    ),
    EdgeScenario("edge: kill -9 of the purger (supervisord restarts it)", kill_purger, 4.0),
    EdgeScenario(
        "edge: the purger frozen 6 s (SIGSTOP), then woken", freeze_purger, 4.0, writes=300
    ),
    EdgeScenario(
        "edge: the whole broker stopped for 10 s", stop_broker, 1.0, writes=300, pace_s=0.04
    ),
]


def run_row(stack: Stack, api_key: str, scenario: EdgeScenario) -> dict[str, Any]:
    """One edge row: the harness, with the scenario's fault in its own thread."""
    until(lambda: edge_serving(stack), 60, "the edge purger following the stream")
    if scenario.replica_delay_s:
        delay_replicas(stack, scenario.replica_delay_s)
    writer = requests.Session()
    writer.headers["X-API-Key"] = api_key
    fault = scenario.fault
    try:
        with writer:
            load = Load(stack.base_url, writer, hot_users(writer, stack.base_url, 4))
            result = measured(
                stack,
                lambda: freshness(
                    load,
                    scenario.writes,
                    posts=scenario.posts,
                    pace_s=scenario.pace_s,
                    during=(lambda: fault(stack)) if fault else None,
                ),
            )
    finally:
        if scenario.replica_delay_s:
            delay_replicas(stack, 0)
    print(f"{scenario.name}: {result.summary}", flush=True)  # where its time went
    return {"scenario": scenario, "result": result}


def met(scenario: EdgeScenario, result: Freshness) -> bool:
    lag = result.p99 if scenario.on_p99 else result.worst
    return lag <= scenario.bound_s and result.final_fresh


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the edge rows."""
    lines = [
        "| scenario | writes | reads (EDGE share) | 2xx → last old version: p99 / worst ms "
        "| bound | final versions fresh | expected |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        scenario, result = row["scenario"], row["result"]
        bound = f"{'p99' if scenario.on_p99 else 'worst'} ≤ {scenario.bound_s * 1000:.0f} ms"
        lines.append(
            f"| {scenario.name} | {len(result.lags)} | {result.reads} ({result.edge_share:.0%}) "
            f"| {result.p99 * 1000:.0f} / {result.worst * 1000:.0f} | {bound} "
            f"| {'yes' if result.final_fresh else '**no**'} "
            f"| {'met' if met(scenario, result) else '**missed**'} |"
        )
    return "\n".join(lines)


def rows(stack: Stack, api_key: str, only: str = "") -> list[dict[str, Any]]:
    """Every edge row whose name contains ONLY, printed as it comes."""
    found = []
    for scenario in [s for s in SCENARIOS if only in s.name]:
        found.append(run_row(stack, api_key, scenario))
        print(table(found[-1:]).splitlines()[-1], flush=True)
    return found
