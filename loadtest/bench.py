"""`make bench`: the staircase from one server to the full stack, measured in one run against
the naive peer, the stack a user would build instead (loadtest/naive_peer.py).

Stages, each on the same read-heavy Zipf mix (loadtest/wrk/zipf_mix.lua) with wrk:

1. one API process (gunicorn, one sync worker), primary only, no cache, no load balancer;
2. + reads from the replicas;
3. + the Redis cache;
4. + nginx over the API replicas, each with its worker processes (past the edge cache: a query
   string on every GET, which the edge neither serves nor stores);
5. + nginx's edge cache: the running stack as `make up` has it;

and the naive peer on the same mix: nginx over one gunicorn with as many sync workers as the
stack has, Flask + SQLAlchemy's default pool, naive Redis cache-aside, the same data and replica.

Plus the floors and the hot path: nginx alone, the bare endpoint, a cached GET of hot ids (near
cache, then the edge), an uncached list read, and a random id over every seeded user (mostly
misses), each paired with the peer's same workload. Every row reports project / peer.
Each stage reports the best throughput whose p99 stays within BENCH_P99_MS, trying a few
connection counts; stages and hot-path runs repeat in BENCH_ROUNDS interleaved rounds, and each
reports its median, and the median of its per-round ratios to the peer. Every run also reports
the CPU the machine spent on it, wrk's own left out: how many cores were busy, and the CPU time
per request. Prints a table, writes docs/benchmarks.md, docs/capacity.md and imgs/staircase.png.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest import capacity, results_box
from loadtest.cpu import busy_cpu_s, children_cpu_s, cpu_by_group, per_request_us
from loadtest.docs import replace_section
from stack.exempt import LOOPBACK, launcher_up, loopback_exempt
from stack.keys import ensure_key
from stack.nginx import edge_serving
from stack.seed import seed
from stack.settings import REPO, Stack, load_stack
from stack.waiting import until

WRK_DIR = REPO / "loadtest" / "wrk"
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "5"))
P99_LIMIT_MS = float(os.environ.get("BENCH_P99_MS", "50"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "4,8,16,32").split(",")]
SINGLE_PORT = int(os.environ.get("BENCH_SINGLE_PORT", "8090"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# Worker processes of the stage 1-3 server: one API process, as in the book's single server.
SINGLE_WORKERS = os.environ.get("BENCH_SINGLE_WORKERS", "1")
# The hot user set of the cached-GET run: small enough that every worker's near cache holds it
# in the steady state, as it holds a popular profile (see docs/benchmarks.md).
HOT_USERS = os.environ.get("BENCH_HOT_USERS", "100")
WARMUP_S = int(os.environ.get("BENCH_WARMUP_S", "3"))
# Each stage of the Zipf staircase (and the peer) is warmed with the same traffic this long
# before its measured runs: the steady state of its caches, not their filling.
ZIPF_WARMUP_S = int(os.environ.get("BENCH_ZIPF_WARMUP_S", "30"))


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    connections: int
    cores: float  # cores busy during the run, wrk's own CPU left out (NaN without /proc/stat)
    cpu_us: float  # that CPU time per request
    # That CPU per request by process group (loadtest/cpu.py GROUPS): where it went.
    groups: tuple[tuple[str, float], ...] = ()


def to_ms(text: str) -> float:
    """wrk's '1.23ms' / '45.00us' / '1.02s' / '1.50m' in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]
    return float(match.group(1)) * factor


def wrk(
    name: str,
    url: str,
    script: str | None,
    connections: int,
    env: dict[str, str],
    duration_s: int = DURATION_S,
) -> Result:
    """Run wrk once (one thread, so the load generator leaves the stack its CPU) and parse it."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(WRK_DIR / script)]
    busy, generator, started = busy_cpu_s(), children_cpu_s(), time.monotonic()
    by_group = cpu_by_group()
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    wall = time.monotonic() - started
    stack_cpu = busy_cpu_s() - busy - (children_cpu_s() - generator)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in socket.groups()) if socket else 0
    )
    cpu_us = stack_cpu / requests * 1e6 if requests else math.nan
    groups = tuple(per_request_us(by_group, cpu_by_group(), requests).items())
    return Result(name, rps, p50, p99, errors, connections, stack_cpu / wall, cpu_us, groups)


def best_within_p99(
    name: str, url: str, script: str, env: dict[str, str], log: Path | None = None
) -> Result:
    """The highest throughput among CONNECTIONS whose p99 stays within the limit, after a warm-up
    of ZIPF_WARMUP_S; with LOG (nginx's access log), the share of the measured requests nginx's
    edge answered is printed and kept (edge_hits)."""
    wrk(name, url, script, CONNECTIONS[0], env, duration_s=ZIPF_WARMUP_S)  # the steady state
    start = log_position(log) if log else (0, 0)
    results = [wrk(name, url, script, c, env) for c in CONNECTIONS]
    if log:
        EDGE_HITS.append(edge_share(log, start))
    within = [r for r in results if r.p99_ms <= P99_LIMIT_MS and r.errors == 0]
    return max(within or results, key=lambda r: r.rps)


# The edge's share of stage 5's measured requests, one per round.
EDGE_HITS: list[float] = []


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


def wait_for(url: str, timeout: float = 30) -> None:
    """Poll URL until it answers 200."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http URL)
                return bool(response.status == 200)
        except OSError:
            return False

    until(answers, timeout, f"{url} answering 200", 0.2)


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


def seeded_range(stack: Stack) -> dict[str, int]:
    """The id range `make seed` loaded (seeding 100,000 users first if nothing was seeded)."""
    path = stack.state / "seed.json"
    if not path.exists():
        seed(stack, 100_000)
    summary: dict[str, int] = json.loads(path.read_text())
    return summary


@dataclass(frozen=True)
class Row:
    """A measured row, the peer's same workload in the same rounds, and project / peer."""

    result: Result
    peer: Result | None
    ratio: float  # the median of the per-round throughput ratios (NaN without a peer)


def median(runs: list[Result]) -> Result:
    """The run with the median throughput (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def median_ratio(ours: list[Result], theirs: list[Result]) -> float:
    """The median over the rounds of our throughput / theirs (each pair from the same round)."""
    ratios = sorted(a.rps / b.rps for a, b in zip(ours, theirs, strict=True) if b.rps)
    return ratios[len(ratios) // 2] if ratios else math.nan


PEER_PORT = int(os.environ.get("BENCH_PEER_PORT", "8093"))
PEER_API_PORT = int(os.environ.get("BENCH_PEER_API_PORT", "8094"))


def peer_nginx_config(stack: Stack, folder: Path) -> str:
    """The peer's nginx: a plain reverse proxy (same worker count, upstream keepalive and log
    buffering as the stack's, so the comparison is of what is behind it)."""
    return f"""worker_processes {stack.env["NGINX_WORKER_PROCESSES"]};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {folder}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream peer {{ server 127.0.0.1:{PEER_API_PORT}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{PEER_PORT};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://peer;
        }}
        location = /lb-health {{ access_log off; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


@contextmanager
def naive_peer(stack: Stack) -> Iterator[str]:
    """Run the naive peer (nginx + gunicorn) on its own ports until the block ends; its URL."""
    # Beside the state dir, not in it: `make up` (which the bench runs to toggle the edge cache)
    # takes any nginx whose command line names the state dir for an orphan of the stack.
    folder = stack.state.with_name(f"{stack.state.name}-bench-peer")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "nginx.conf").write_text(peer_nginx_config(stack, folder))
    env = stack.env
    app_db = f"{env['MYSQL_APP_USER']}:{env['MYSQL_APP_PASSWORD']}@{stack.host}"
    workers = len(stack.apis) * int(env["GUNICORN_WORKERS"])
    peer_env = {
        **os.environ,
        "PEER_PRIMARY_URL": f"mysql+pymysql://{app_db}:{stack.primary.port}/{env['MYSQL_DATABASE']}",
        "PEER_REPLICA_URL": f"mysql+pymysql://{app_db}:{stack.replicas[0].port}/{env['MYSQL_DATABASE']}",
        "PEER_REDIS_URL": f"redis://:{env['REDIS_PASSWORD']}@{stack.host}:{stack.redis_port}/0",
    }
    app = subprocess.Popen(
        [
            str(stack.venv / "bin" / "gunicorn"),
            f"--workers={workers}",
            f"--bind=127.0.0.1:{PEER_API_PORT}",
            "loadtest.naive_peer:create_app()",
        ],
        cwd=REPO,
        env=peer_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = subprocess.Popen(
        ["nginx", "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{PEER_PORT}"
        wait_for(f"{url}/ping")
        print(f"naive peer: nginx :{PEER_PORT} over gunicorn, {workers} sync workers", flush=True)
        yield url
    finally:
        for process in (proxy, app):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


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


def staircase(stack: Stack, peer: str, env: dict[str, str]) -> list[Row]:
    """Stages 1-5 and the peer on the Zipf mix, in ROUNDS interleaved rounds; each stage's median
    round and its median ratio to the peer.

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
    for round_number in range(1, ROUNDS + 1):
        print(f"round {round_number} of {ROUNDS}", flush=True)
        peer_rounds.append(best_within_p99(peer_name, peer, "zipf_mix.lua", env))
        print_row(peer_rounds[-1])
        for i, (name, options) in enumerate(steps):
            if isinstance(options, bool):
                log = stack.state / "logs" / "nginx-access.log" if options else None
                run_env = {**env, "EDGE_BYPASS": "0" if options else "1"}
                rounds[i].append(
                    best_within_p99(name, stack.base_url, "zipf_mix.lua", run_env, log)
                )
            else:
                process = single_server(stack, **options)
                try:
                    rounds[i].append(best_within_p99(name, single, "zipf_mix.lua", env))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            print_row(rounds[i][-1])
    peer_result = median(peer_rounds)
    rows = [Row(median(runs), peer_result, median_ratio(runs, peer_rounds)) for runs in rounds]
    STEP_RATIOS[:] = [median_ratio(after, before) for before, after in itertools.pairwise(rounds)]
    print("median of the rounds:")
    print_row(peer_result)
    for row in rows:
        print_row(row.result, row.ratio)
    return [*rows, Row(peer_result, None, math.nan)]


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


def print_row(r: Result, ratio: float = math.nan) -> None:
    """One line of the live table."""
    numbers = f"{r.rps:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7} {r.connections:>5}"
    vs = "" if math.isnan(ratio) else f"  x{ratio:.2f} of the peer"
    print(f"{r.name[:60]:<60} {numbers} {r.cores:>5.2f} {r.cpu_us:>8,.0f}{vs}", flush=True)


def markdown(stairs: list[Row], hot: list[Row], ratios: list[Target], command: str) -> str:
    """The results section of docs/benchmarks.md."""

    def rows(measured: list[Row], over: str) -> str:
        lines = []
        for row in measured:
            r, peer = row.result, row.peer
            vs = (
                f"{peer.name.removeprefix('peer: ')}: {peer.rps:,.0f}/s, {peer.cpu_us:,.0f} µs "
                f"| **{row.ratio:.2f}** | {r.cpu_us / peer.cpu_us:.2f} |"
                if peer is not None
                else "| | |"
            )
            lines.append(
                f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f}"
                f"{over if r.p99_ms > P99_LIMIT_MS else ''} | {r.errors} | {r.connections} "
                f"| {r.cores:.2f} | {r.cpu_us:,.0f} | {vs}"
            )
        return "\n".join(lines)

    every_count_over = " (over the limit at every connection count)"
    head = (
        "| run | req/s | p50 ms | p99 ms | errors | connections | cores busy "
        "| CPU µs per request | the peer's same workload | req/s ÷ peer | CPU per request ÷ peer |"
        "\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    ratio_rows = "\n".join(
        f"| {r.name} | {r.value:.2f} | {r.target} | {'met' if r.met else '**not met**'} |"
        for r in ratios
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## Latest run\n\n`{command}`, {stamp}, {os.cpu_count()} CPUs, wrk 1 thread, "
        f"{DURATION_S} s per run. Cores busy and CPU per request: the whole machine's CPU time "
        "during the run (`/proc/stat`), less wrk's own. Every ratio to the peer is the median "
        "of the per-round ratios, each round's two runs taken minutes apart at most.\n\n"
        "### The staircase (Zipf mix, best throughput with p99 ≤ "
        f"{P99_LIMIT_MS:.0f} ms; median of {ROUNDS} interleaved rounds)\n\n"
        f"{head}\n{rows(stairs, every_count_over)}\n\n"
        "![staircase](../imgs/staircase.png)\n\n"
        f"### Floors and the hot path (through nginx; median of {ROUNDS} interleaved rounds)"
        f"\n\n{head}\n{rows(hot, ' (over the bound)')}\n\n"
        f"### Targets\n\n| ratio | value | target | status |\n|---|---|---|---|\n{ratio_rows}\n\n"
        f"{breakdown([*stairs, *hot])}"
    )


def breakdown(rows: list[Row]) -> str:
    """Where the CPU of each run (and its peer's) went, by process group: µs per request."""
    runs = {r.name: r for row in rows for r in (row.result, row.peer) if r is not None}
    groups = sorted({g for r in runs.values() for g, _ in r.groups})
    if not groups:
        return ""
    head = f"| run | {' | '.join(groups)} | all (machine) |\n|" + "---|" * (len(groups) + 2)
    lines = []
    for r in runs.values():
        spent = dict(r.groups)
        cells = " | ".join(f"{spent[g]:,.0f}" if g in spent else "–" for g in groups)
        lines.append(f"| {r.name} | {cells} | {r.cpu_us:,.0f} |")
    return (
        "### Where the CPU went (µs per request by process group, the median round's run; "
        "`all` is the whole machine's, wrk's own left out)\n\n" + head + "\n" + "\n".join(lines)
    )


@dataclass(frozen=True)
class Target:
    """A ratio and the bound it aims at."""

    name: str
    value: float
    at_least: float

    @property
    def target(self) -> str:
        return f"≥ {self.at_least:g}"

    @property
    def met(self) -> bool:
        return self.value >= self.at_least


def targets(stairs: list[Row], hot: list[Row]) -> list[Target]:
    """The ratios docs/benchmarks.md tracks (issue #16's targets, and the earlier floors)."""
    _lb, bare, near, edge_hot, listing, miss_nocache, miss_naive, _edge_miss, cold = hot
    return [
        Target("random id, the full stack (edge on) ÷ peer with no cache", cold.ratio, 1.0),
        Target(
            "random id: cache miss (past the edge) ÷ peer with no cache", miss_nocache.ratio, 1.0
        ),
        Target("random id: cache miss ÷ peer's cache-aside miss", miss_naive.ratio, 1.1),
        Target("hot cached read (near cache) ÷ peer's cached read", near.ratio, 1.3),
        Target("hot cached read (edge cache) ÷ peer's cached read", edge_hot.ratio, 5.0),
        Target("Zipf mix: full stack (stage 5) ÷ peer, p99 ≤ 50 ms", stairs[4].ratio, 2.5),
        Target(
            "Zipf mix: share of stage 5's requests the edge answered",
            sorted(EDGE_HITS)[len(EDGE_HITS) // 2] if EDGE_HITS else math.nan,
            0.6,
        ),
        *(
            Target(f"Zipf mix: stage {n + 2} ÷ stage {n + 1}", ratio, 1.0)
            for n, ratio in enumerate(STEP_RATIOS)
        ),
        Target("Zipf mix: stage 4 (no edge) ÷ peer, p99 ≤ 50 ms", stairs[3].ratio, 2.0),
        Target("cached GET (near) ÷ bare /healthz", near.result.rps / bare.result.rps, 0.85),
        Target("uncached list read ÷ bare /healthz", listing.result.rps / bare.result.rps, 0.6),
        Target(
            "full stack (stage 5) ÷ stage 1, Zipf mix",
            stairs[4].result.rps / stairs[0].result.rps,
            2.0,
        ),
    ]


def chart(stairs: list[Row], path: Path) -> None:
    """Requests/s per stage and the peer's, each bar with its p99 and its ratio to the peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    colors = ["#90a4ae", "#64b5f6", "#e57373", "#81c784", "#4db6ac", "#ffd54f"]
    names = [row.result.name.replace(" (the stack as `make up` runs it)", "") for row in stairs]
    bars = ax.bar(names, [row.result.rps for row in stairs], color=colors[: len(stairs)])
    for bar, row in zip(bars, stairs, strict=True):
        vs = "" if math.isnan(row.ratio) else f"\n{row.ratio:.2f}x peer"
        ax.annotate(
            f"{row.result.rps:,.0f}/s\np99 {row.result.p99_ms:.0f} ms{vs}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_ylabel(f"requests/s, Zipf mix, p99 ≤ {P99_LIMIT_MS:.0f} ms")
    ax.set_title("From one server to the full stack, and the naive peer, on this machine")
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=12, ha="right")
    ax.margins(y=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def capacity_section(full_stack: Result, peer: Result, command: str) -> str:
    """docs/capacity.md's measured part: the sustainable rate against the model's peak."""
    model = capacity.model()
    within = full_stack.p99_ms <= P99_LIMIT_MS and full_stack.errors == 0
    headroom = full_stack.rps / model.peak_rps
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = (
        f"holds the peak with a headroom factor of **{headroom:.2f}**"
        if within and headroom >= 1
        else f"does **not** hold the peak: headroom factor **{headroom:.2f}**"
    )
    return (
        f"### Measured by `{command}`, {stamp}, {os.cpu_count()} CPUs\n\n"
        "| | value |\n|---|---|\n"
        f"| model: {model.dau:,.0f} DAU x {model.requests_per_user_per_day:g} requests / "
        f"86,400 s x peak factor {model.peak_factor:g} | **{model.peak_rps:,.0f} req/s** at peak "
        f"({model.average_rps:,.0f} on average) |\n"
        f"| full stack, Zipf mix, best throughput with p99 <= {P99_LIMIT_MS:.0f} ms "
        f"(staircase stage 5) | {full_stack.rps:,.0f} req/s, p99 {full_stack.p99_ms:.1f} ms, "
        f"{full_stack.errors} errors{'' if within else ' (over the bound)'} |\n"
        f"| the naive peer on the same mix, same machine and run | {peer.rps:,.0f} req/s, "
        f"p99 {peer.p99_ms:.1f} ms (headroom {peer.rps / model.peak_rps:.2f}) |\n"
        f"| headroom factor = sustainable / peak (aim: >= 3) | {headroom:.2f} |\n"
        f"| daily active users this rate serves, same assumptions | "
        f"{headroom * model.dau:,.0f} |\n\n"
        f"On this machine the full stack {verdict}."
    )


def main() -> None:
    """Run the whole staircase and write its outputs (127.0.0.1 exempt from nginx's per-address
    limits meanwhile: the bench measures capacity, not the limiter)."""
    # A stopped bench must not leave its servers behind: SIGTERM unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configured_edge = load_stack().env["EDGE_CACHE"] == "on"
    with loopback_exempt(load_stack()) as stack:
        # The edge stays on through the whole run (warm, as in production): stage 4 and the
        # edge-off rows go past it per request (EDGE_BYPASS: a query string it does not serve).
        edge_on(True)
        try:
            run(stack)
        finally:
            if not configured_edge:
                edge_on(False)


def run(stack: Stack) -> None:
    """The staircase, the floors and the hot path on STACK and the peer; the docs and chart."""
    wait_for(f"{stack.internal_url}/readyz", timeout=5)
    ids = seeded_range(stack)
    env = wrk_env(stack, ids)
    columns = f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'conns':>5} {'cores':>5}"
    with naive_peer(stack) as peer:
        print(f"{'run':<60} {columns} {'CPU µs/req':>8}")
        stairs = staircase(stack, peer, env)
        hot = hot_path(stack, peer, env, ids["last_id"] - ids["first_id"] + 1)
    ratios = targets(stairs, hot)
    print()
    for target in ratios:
        status = "met" if target.met else "NOT met"
        print(f"{target.name:<58} {target.value:>6.2f}  ({target.target}: {status})")
    command = ("make bench " + " ".join(sys.argv[1:])).strip()
    replace_section(
        REPO / "docs" / "benchmarks.md", "bench", markdown(stairs, hot, ratios, command)
    )
    section = capacity_section(stairs[4].result, stairs[5].result, command)
    replace_section(REPO / "docs" / "capacity.md", "bench", section)
    chart(stairs, REPO / "imgs" / "staircase.png")
    results_box.refresh()
    print("\n" + section.split("\n\n", 1)[1])
    print("\nwrote docs/benchmarks.md, docs/capacity.md, README's results and imgs/staircase.png")


if __name__ == "__main__":
    main()
