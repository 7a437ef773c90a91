"""`make chaos`'s pause rows: one part at a time frozen with SIGSTOP (a paused VM, a stalled
process: its ports open, none of its code running) under the chaos load, then woken with SIGCONT.

The verdicts are the chaos table's (no lost write or event, no stale read, no failed read), plus
a bound on the slowest request where the frozen part is one the stack should route around: a
replica, Redis, a NATS node, the relay holding the lease, a queue worker, an API replica (any
other replica can answer), a push process. The primary has no such bound: writes wait for it
until `make failover`, which fences it. The push process's row also opens streams while it is
frozen: each must get its headers within STREAM_READY_S and carry every post made meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests

from loadtest.chaos.config import CLIENTS, launcher
from loadtest.chaos.faults import lease_holder, primary_returns
from loadtest.chaos.report import table
from loadtest.chaos.scenarios import Scenario
from loadtest.harness.docs import replace_section
from stack import queue, supervisor
from stack.keys import ensure_key
from stack.settings import REPO, Stack

PAUSE_S = float(os.environ.get("CHAOS_PAUSE_SECONDS", "10"))
# Requests that do not need the frozen part: a read's deadline (DB_READ_DEADLINE_S) plus a retry.
ROUTED_AROUND_S = 2.0
# A request in flight to a frozen API replica (a read, or a write with an Idempotency-Key, as the
# chaos clients send): nginx gives it up after NGINX_ANSWER_TIMEOUT_S and the next replica answers.
SENT_AGAIN_S = float(os.environ.get("NGINX_ANSWER_TIMEOUT_S", "4")) + 0.5
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


# A push process frozen: streams opened meanwhile must get their headers within this (nginx gives
# a push process NGINX_STREAM_TIMEOUT_S, 2 s, for its first byte, then opens it on the next), and
# every post made while they waited.
STREAM_READY_S = 3.0
STREAMS = 4
_streams: dict[str, Any] = {}


def stream_posts(url: str, ready: list[float], ids: set[int], until_s: float) -> None:
    """One stream of URL: when its headers came (appended to READY), and the ids of the posts it
    carried (into IDS) until UNTIL_S (time.monotonic()); it never reconnects."""
    asked = time.monotonic()
    try:
        with requests.get(url, stream=True, timeout=(5, 5)) as answer:
            ready.append(time.monotonic() - asked)
            name = ""
            for line in answer.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and name == "post":
                    ids.add(int(json.loads(line.split(":", 1)[1])["id"]))
                if time.monotonic() > until_s:
                    break
    except (requests.RequestException, ValueError):
        pass  # no headers, or the stream broke: what it got is counted


def freeze_push_and_stream(stack: Stack) -> None:
    """push-1 frozen; then STREAMS streams of one user opened through nginx, and three posts
    made while they wait for a process."""
    freeze(stack, "push-1")
    key = ensure_key(stack, "chaos", "critical")
    user = requests.post(
        f"{stack.base_url}/api/users",
        json={"name": "Frozen", "second_name": "Push"},
        headers={"X-API-Key": key},
        timeout=5,
    ).json()["id"]
    ready: list[float] = []
    ids: set[int] = set()
    url = f"{stack.base_url}/api/users/{user}/stream"
    until_s = time.monotonic() + PAUSE_S + 5
    readers = [
        threading.Thread(target=stream_posts, args=(url, ready, ids, until_s))
        for _ in range(STREAMS)
    ]
    for reader in readers:
        reader.start()
    time.sleep(0.5)  # the streams' requests have reached nginx; push-1 holds some of them
    made = [
        requests.post(
            f"{stack.base_url}/api/users/{user}/posts",
            json={"body": f"while push-1 sleeps {n}"},
            headers={"X-API-Key": key},
            timeout=5,
        ).json()["id"]
        for n in range(3)
    ]
    _streams.update(readers=readers, ready=ready, ids=ids, made=set(made))


def streams_held(stack: Stack) -> str:
    """ "" when every stream opened during the freeze had its headers within STREAM_READY_S and
    carried every post made meanwhile; else what did not hold."""
    for reader in _streams["readers"]:
        reader.join(timeout=PAUSE_S + 10)
    ready, ids, made = _streams["ready"], _streams["ids"], _streams["made"]
    if len(ready) < STREAMS or max(ready) > STREAM_READY_S:
        slowest = f"{max(ready):.1f} s" if ready else "none"
        return f"streams ready: {len(ready)} of {STREAMS}, slowest {slowest}"
    if not made <= ids:
        return f"posts missed by the streams: {len(made - ids)} of {len(made)}"
    return ""


SCENARIOS = [
    frozen_program(lambda s: "mysql-replica-1", ROUTED_AROUND_S, "replica-1 frozen"),
    frozen_program(lambda s: "redis", ROUTED_AROUND_S, "Redis frozen"),
    frozen_program(queue.stream_leader_of, ROUTED_AROUND_S, "the stream leader (NATS) frozen"),
    frozen_program(lease_holder, ROUTED_AROUND_S, "the relay holding the lease frozen"),
    frozen_program(lambda s: s.workers[0], ROUTED_AROUND_S, "a queue worker frozen"),
    frozen_program(lambda s: "api-2", SENT_AGAIN_S, "an API replica frozen (master, workers)"),
    Scenario(
        "push-1 frozen: streams opened meanwhile (headers within 3 s, every post)",
        freeze_push_and_stream,
        lambda s: wake("push-1"),
        check=streams_held,
        slowest_bound_s=ROUTED_AROUND_S,
    ),
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
        f"{ROUTED_AROUND_S:.0f} s where the stack routes around the part, "
        f"{SENT_AGAIN_S:g} s for a frozen API replica: the timeout at nginx "
        "of a read or a keyed write, and its second try).\n\n"
        f"{table(rows)}\n"
    )
    replace_section(REPO / "docs" / "reliability.md", "chaos-pause", text)
