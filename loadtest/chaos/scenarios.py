"""The faults of `make chaos`, one each (frozen parts: pause.py; the edge's: edge.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loadtest.chaos.config import launcher
from loadtest.chaos.faults import (
    kill_pid_file,
    kill_program,
    lease_holder,
    lose_primary,
    lose_primary_without_semi_sync,
    poison_dead_lettered,
    primary_returns,
    publish_poison,
    sql,
    supervise,
)
from stack import queue
from stack.settings import Stack


@dataclass(frozen=True)
class Scenario:
    """A fault: how to inject it, how to heal it, and whether writes may be refused meanwhile."""

    name: str
    inject: Callable[[Stack], object]
    heal: Callable[[Stack], object]
    writes_refused: bool = False
    # The single entry point (nginx), or everything, is replaced meanwhile: requests may fail
    # while it is; none may be lost or stale.
    entry_replaced: bool = False
    # What the scenario shows is that acknowledged writes can be lost (semi-sync off): the count
    # is the result, not a failure.
    loss_possible: bool = False
    # Checked once the fault is healed: "" when what the scenario must show held, else what not.
    check: Callable[[Stack], str] | None = None
    # The longest a request may take meanwhile (None: not bounded; a frozen part's rows set it).
    slowest_bound_s: float | None = None


SCENARIOS = [
    Scenario(
        "kill -9 of an API replica",
        lambda s: kill_program(s, "api-2"),
        lambda s: supervise(s, "start", "api-2"),
    ),
    Scenario(
        "DB replica stopped",
        lambda s: supervise(s, "stop", "mysql-replica-2"),
        lambda s: supervise(s, "start", "mysql-replica-2"),
    ),
    Scenario(
        "replica SQL thread stalled",
        lambda s: sql(s, "replica-1", "STOP REPLICA SQL_THREAD"),
        lambda s: sql(s, "replica-1", "START REPLICA SQL_THREAD"),
    ),
    Scenario(
        "heartbeat writer stopped",
        lambda s: supervise(s, "stop", "heartbeat"),
        lambda s: supervise(s, "start", "heartbeat"),
    ),
    Scenario(
        "Redis killed",
        lambda s: supervise(s, "signal", "KILL", "redis"),
        lambda s: supervise(s, "start", "redis"),
    ),
    Scenario(
        "primary stopped, then restarted",
        lambda s: supervise(s, "stop", "mysql-primary"),
        lambda s: supervise(s, "start", "mysql-primary"),
        writes_refused=True,
    ),
    Scenario(
        "kill -9 of the primary's mariadbd (supervisord restarts it)",
        lambda s: kill_program(s, "mysql-primary"),
        lambda s: supervise(s, "start", "mysql-primary"),
        writes_refused=True,
    ),
    Scenario(
        "kill -9 of the nginx master, healed by make up",
        lambda s: kill_pid_file(s, "nginx"),
        lambda s: launcher("up"),
        entry_replaced=True,
    ),
    Scenario(
        "kill -9 of supervisord, healed by make up",
        lambda s: kill_pid_file(s, "supervisord"),
        lambda s: launcher("up"),
        writes_refused=True,
        entry_replaced=True,
    ),
    Scenario(
        "primary lost (kill -9, kept down), make failover; back by make up and make switchover",
        lose_primary,
        primary_returns,
        writes_refused=True,
    ),
    Scenario(
        "make switchover to a replica, and back",
        lambda s: launcher("switchover"),
        lambda s: launcher("switchover", {"MYSQL_SWITCHOVER_TO": f"{s.host}:{s.primary.port}"}),
    ),
    # The message queue (docs/messaging.md): writes go on, and every acknowledged write's event
    # reaches the workers ("lost events" counts the ones that did not).
    Scenario(
        "kill -9 of the events stream's leader (a NATS node)",
        lambda s: kill_pid_file(s, queue.stream_leader_of(s)),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "the whole broker stopped (3 NATS nodes)",
        lambda s: supervise(s, "stop", *(n.name for n in s.nats_nodes)),
        lambda s: supervise(s, "start", *(n.name for n in s.nats_nodes)),
    ),
    Scenario(
        "kill -9 of the relay holding the outbox lease",
        lambda s: kill_pid_file(s, lease_holder(s)),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "kill -9 of a queue worker",
        lambda s: kill_pid_file(s, s.workers[0]),
        lambda s: supervise(s, "start", "all"),
    ),
    Scenario(
        "a message no worker can apply (poison) in the stream",
        publish_poison,
        lambda s: None,
        check=poison_dead_lettered,
    ),
]


# Last, after the pauses and the edge rows (loadtest/chaos/pause.py, edge.py): the former primary
# may have diverged, and the stack is removed afterwards.
FINAL = Scenario(
    "semi-sync off: primary lost (kill -9, kept down), make failover",
    lose_primary_without_semi_sync,
    lambda s: None,
    writes_refused=True,
    loss_possible=True,
)
