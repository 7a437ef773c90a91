"""The floors and the hot path: each workload with the peer's same, through nginx."""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.bench.config import CONNECTIONS, HOT_USERS, ROUNDS, WARMUP_S
from loadtest.harness.wrk import Result, Row, median, median_ratio, print_row, wrk
from stack.settings import Stack


@dataclass(frozen=True)
class Workload:
    """One wrk run of the hot path: against the stack (edge on or off) or against the peer."""

    name: str
    path: str
    script: str | None
    edge: bool | None = None  # None: the peer
    users_path: str = "/api/users"


def hot_path(stack: Stack, peer: str, env: dict[str, str], users: int) -> list[Row]:
    """The floors and the hot-path reads, each with the peer's same workload, all through nginx
    at the same connection count."""
    conns = CONNECTIONS[-1]
    hot = f"{HOT_USERS} hot ids"
    random_id = f"random id over {users:,} users"
    workloads = {
        "lb": Workload("nginx alone (/lb-health)", "/lb-health", None, False),
        "lb peer": Workload("peer: nginx alone (/lb-health)", "/lb-health", None),
        "bare": Workload("bare /healthz", "/healthz", None, False),
        "bare peer": Workload("peer: bare /ping", "/ping", None),
        "hot": Workload(
            f"cached GET /api/users/{{id}}, {hot}, near cache", "", "hot_user.lua", False
        ),
        "hot peer": Workload(
            f"peer: cached GET, {hot} (Redis GET + re-encode)", "", "hot_user.lua"
        ),
        "list": Workload("uncached list read (replica)", "", "replica_read.lua", False),
        "list peer": Workload("peer: uncached list read", "", "replica_read.lua"),
        "random": Workload(f"GET {random_id} (cache misses)", "", "random_user.lua", False),
        "random peer": Workload(
            f"peer: GET {random_id}, no cache", "", "random_user.lua", users_path="/nocache/users"
        ),
        "random peer cache": Workload(
            f"peer: GET {random_id}, cache-aside misses", "", "random_user.lua"
        ),
        "hot edge": Workload(
            f"cached GET /api/users/{{id}}, {hot}, edge cache", "", "hot_user.lua", True
        ),
        "random edge": Workload(
            f"GET {random_id} through the edge cache", "", "random_user.lua", True
        ),
    }
    # Interleaved rounds, then the median of each: this machine's throughput drifts over tens of
    # seconds, and a ratio of two runs taken a minute apart would measure the drift. Each run
    # follows a short warm-up of its own, so it measures the steady state: hot keys stay in the
    # near cache in production, but would expire (NEAR_CACHE_TTL_S) between rounds here.
    runs: dict[str, list[Result]] = {key: [] for key in workloads}
    for round_number in range(1, ROUNDS + 1):
        print(f"hot path, round {round_number} of {ROUNDS}", flush=True)
        # The edge-off runs first, each right before its peer run; then the edge-on runs.
        for key, work in sorted(workloads.items(), key=lambda item: item[1].edge is True):
            base = peer if work.edge is None else stack.base_url
            bypass = "1" if work.edge is False else "0"
            run_env = {**env, "USERS_PATH": work.users_path, "EDGE_BYPASS": bypass}
            wrk(work.name, base + work.path, work.script, conns, run_env, duration_s=WARMUP_S)
            runs[key].append(wrk(work.name, base + work.path, work.script, conns, run_env))
            print_row(runs[key][-1])
    pairs = [
        ("lb", "lb peer"),
        ("bare", "bare peer"),
        ("hot", "hot peer"),
        ("hot edge", "hot peer"),
        ("list", "list peer"),
        ("random", "random peer"),
        ("random", "random peer cache"),
        ("random edge", "random peer cache"),
        ("random edge", "random peer"),
    ]
    rows = [
        Row(median(runs[ours]), median(runs[theirs]), median_ratio(runs[ours], runs[theirs]))
        for ours, theirs in pairs
    ]
    print("median of the rounds:")
    for row in rows:
        print_row(row.result, row.ratio)
    return rows
