"""Stages 1-5 of the staircase and the peer on the Zipf reads, and stage 5 and the peer on the
Zipf mix (the same reads with 5% writes), in interleaved rounds after a steady-state warm-up."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
from pathlib import Path

from loadtest.bench.config import (
    CONNECTIONS,
    HOT_USERS,
    MIX_SCRIPT,
    P99_LIMIT_MS,
    READS_SCRIPT,
    ROUNDS,
    SINGLE_PORT,
    SINGLE_WORKERS,
    STEADY_SLICE_S,
    STEADY_WARMUP_S,
    ZIPF_WARMUP_S,
)
from loadtest.harness.accesslog import edge_share, log_position
from loadtest.harness.waits import wait_for
from loadtest.harness.wrk import WRK_DIR, Result, Row, median, median_ratio, print_row, wrk
from stack.exempt import LOOPBACK, launcher_up
from stack.keys import ensure_key
from stack.nginx import edge_serving
from stack.seed import seed
from stack.settings import REPO, Stack, load_stack
from stack.waiting import until


def best_within_p99(
    name: str,
    url: str,
    script: str,
    env: dict[str, str],
    log: Path | None = None,
    hits: list[float] | None = None,
    warmup_s: int = ZIPF_WARMUP_S,
) -> Result:
    """The highest throughput among CONNECTIONS whose p99 stays within the limit, after a warm-up
    of WARMUP_S; with LOG (nginx's access log), the share of the measured requests nginx's edge
    answered is printed and appended to HITS (default EDGE_HITS)."""
    wrk(name, url, script, CONNECTIONS[0], env, duration_s=warmup_s)  # the steady state
    start = log_position(log) if log else (0, 0)
    results = [wrk(name, url, script, c, env) for c in CONNECTIONS]
    if log:
        (EDGE_HITS if hits is None else hits).append(edge_share(log, start))
    within = [r for r in results if r.p99_ms <= P99_LIMIT_MS and r.errors == 0]
    return max(within or results, key=lambda r: r.rps)


# The edge's share of stage 5's measured requests, one per round: on the Zipf reads, on the mix.
EDGE_HITS: list[float] = []
MIX_EDGE_HITS: list[float] = []
# The steady-state warm-up, slice by slice: (requests the full stack has served so far, the
# edge's share of the slice's requests, req/s of the slice, req/s of the peer's same slice).
STEADY: list[tuple[int, float, float, float]] = []


def steady_state(stack: Stack, peer: str, env: dict[str, str], log: Path) -> None:
    """Before the first round: the full stack (edge on) and then the peer each serve the Zipf
    reads for STEADY_WARMUP_S, in slices; the edge's share of each slice (LOG: nginx's access
    log) is kept (STEADY)."""
    if STEADY_WARMUP_S <= 0:
        return
    conns, slices = CONNECTIONS[1], max(STEADY_WARMUP_S // STEADY_SLICE_S, 1)
    run_env = {**env, "EDGE_BYPASS": "0"}
    print(f"steady state: {slices} x {STEADY_SLICE_S} s of Zipf reads each", flush=True)
    served, ours = 0, []
    for _ in range(slices):
        start = log_position(log)
        result = wrk("steady", stack.base_url, READS_SCRIPT, conns, run_env, STEADY_SLICE_S)
        served += round(result.rps * STEADY_SLICE_S)
        ours.append((served, edge_share(log, start), result.rps))
    theirs = [wrk("steady", peer, READS_SCRIPT, conns, env, STEADY_SLICE_S).rps for _ in ours]
    STEADY[:] = [(*slice_, peer_rps) for slice_, peer_rps in zip(ours, theirs, strict=True)]


def single_server(stack: Stack, *, replicas: bool, cache: bool) -> subprocess.Popen[bytes]:
    """Start the API server of stages 1-3 outside nginx: one gunicorn, BENCH_SINGLE_WORKERS (1)
    sync worker process."""
    metrics_dir = stack.state / "metrics" / "bench"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **stack.api_env(),
        "API_NAME": "bench",
        "API_BIND": f"{stack.host}:{SINGLE_PORT}",
        "GUNICORN_WORKERS": SINGLE_WORKERS,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CACHE_ENABLED": "true" if cache else "false",
        # Stages 1 and 2 have no Redis in the picture: their writers are not rate limited.
        "RATE_LIMIT_ENABLED": "true" if cache else "false",
        "DB_REPLICAS": stack.api_env()["DB_REPLICAS"] if replicas else "",
    }
    process = subprocess.Popen(
        [
            str(stack.venv / "bin" / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "app.processes.api:create_app()",
        ],
        cwd=REPO / "backend",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://{stack.host}:{SINGLE_PORT}/healthz")
    return process


def watch_s(stack: Stack) -> int:
    """How long a new API process listens to Redis's write markers before its near cache vouches
    that a key was not written lately (near.py's `unchanged`): until then every miss asks Redis
    for a tombstone. The single server of stage 3 starts afresh in each round, and a server that
    has run for minutes is past this: it warms this much longer, and is measured past it too."""
    if stack.env.get("CACHE_DIRECT_LOADS", "true").lower() not in ("1", "true", "yes", "on"):
        return 0
    return math.ceil(float(stack.env.get("CACHE_TOMBSTONE_TTL_S", "30")))


def seeded_range(stack: Stack) -> dict[str, int]:
    """The id range `make seed` loaded (seeding 100,000 users first if nothing was seeded)."""
    path = stack.state / "seed.json"
    if not path.exists():
        seed(stack, 100_000)
    summary: dict[str, int] = json.loads(path.read_text())
    return summary


def edge_on(on: bool) -> None:
    """Turn the running stack's edge cache on or off (`make up` with EDGE_CACHE; nginx takes it
    with a HUP), keeping 127.0.0.1 exempt from the per-address limits meanwhile; on, wait until
    the edge purger follows the stream (nginx serves no copy before)."""
    launcher_up({"NGINX_RATE_LIMIT_EXEMPT": LOOPBACK, "EDGE_CACHE": "on" if on else "off"})
    if on:
        until(lambda: edge_serving(load_stack()), 60, "the edge purger following")


def wrk_env(stack: Stack, ids: dict[str, int]) -> dict[str, str]:
    """What the wrk scripts read: the seeded id range, their library, the bench's API key (for
    writes; critical tier), the hot set."""
    return {
        **os.environ,
        "FIRST_ID": str(ids["first_id"]),
        "LAST_ID": str(ids["last_id"]),
        "WRK_LIB": str(WRK_DIR),
        "API_KEY": ensure_key(stack, "bench", "critical"),
        "HOT_USERS": HOT_USERS,
    }


# Each stage ÷ the one before it: the median of the per-round ratios (stages 2-5).
STEP_RATIOS: list[float] = []


def staircase(stack: Stack, peer: str, env: dict[str, str]) -> tuple[list[Row], list[Row]]:
    """Stages 1-5 and the peer on the Zipf reads, in ROUNDS interleaved rounds after the steady
    state; each stage's median round and its median ratio to the peer. And stage 5 and the peer
    on the Zipf mix, in the same rounds: its row and the peer's.

    One sweep per stage put minutes between stage 1 and stage 4, and this machine's speed drifts
    over minutes: the same code measured full stack / stage 1 anywhere from 0.83 to 1.79.
    """
    single = f"http://{stack.host}:{SINGLE_PORT}"
    workers = f"{len(stack.apis)} API replicas x {stack.env['GUNICORN_WORKERS']} workers"
    peer_workers = len(stack.apis) * int(stack.env["GUNICORN_WORKERS"])
    steps: list[tuple[str, dict[str, bool] | bool]] = [
        ("1. one API process, primary only", {"replicas": False, "cache": False}),
        ("2. + read replicas", {"replicas": True, "cache": False}),
        ("3. + Redis cache", {"replicas": True, "cache": True}),
        (f"4. + nginx, {workers}", False),  # the running stack, edge cache off
        ("5. + edge cache (the stack as `make up` runs it)", True),
    ]
    peer_name = f"naive peer: nginx, {peer_workers} sync workers, cache-aside"
    rounds: list[list[Result]] = [[] for _ in steps]
    peer_rounds: list[Result] = []
    mix_names = (f"Zipf mix (5% writes): {peer_name}", "Zipf mix (5% writes): the full stack")
    mix_rounds: tuple[list[Result], list[Result]] = ([], [])
    log = stack.state / "logs" / "nginx-access.log"
    steady_state(stack, peer, env, log)
    for round_number in range(1, ROUNDS + 1):
        print(f"round {round_number} of {ROUNDS}", flush=True)
        peer_rounds.append(best_within_p99(peer_name, peer, READS_SCRIPT, env))
        print_row(peer_rounds[-1])
        for i, (name, options) in enumerate(steps):
            if isinstance(options, bool):
                run_env = {**env, "EDGE_BYPASS": "0" if options else "1"}
                rounds[i].append(
                    best_within_p99(
                        name, stack.base_url, READS_SCRIPT, run_env, log if options else None
                    )
                )
            else:
                process = single_server(stack, **options)
                warmup = ZIPF_WARMUP_S + (watch_s(stack) if options["cache"] else 0)
                try:
                    rounds[i].append(
                        best_within_p99(name, single, READS_SCRIPT, env, warmup_s=warmup)
                    )
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            print_row(rounds[i][-1])
        mix_rounds[0].append(best_within_p99(mix_names[0], peer, MIX_SCRIPT, env))
        print_row(mix_rounds[0][-1])
        edge_env = {**env, "EDGE_BYPASS": "0"}
        mix_rounds[1].append(
            best_within_p99(mix_names[1], stack.base_url, MIX_SCRIPT, edge_env, log, MIX_EDGE_HITS)
        )
        print_row(mix_rounds[1][-1])
    peer_result = median(peer_rounds)
    rows = [Row(median(runs), peer_result, median_ratio(runs, peer_rounds)) for runs in rounds]
    STEP_RATIOS[:] = [median_ratio(after, before) for before, after in itertools.pairwise(rounds)]
    mix_peer = median(mix_rounds[0])
    mix = [
        Row(median(mix_rounds[1]), mix_peer, median_ratio(mix_rounds[1], mix_rounds[0])),
        Row(mix_peer, None, math.nan),
    ]
    print("median of the rounds:")
    print_row(peer_result)
    for row in [*rows, *mix]:
        print_row(row.result, row.ratio)
    return [*rows, Row(peer_result, None, math.nan)], mix
