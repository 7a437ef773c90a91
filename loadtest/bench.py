"""`make bench`: the staircase from one server to the full stack, measured in one run.

Stages, each on the same read-heavy Zipf mix (loadtest/wrk/zipf_mix.lua) with wrk:

1. one API process (gunicorn, one sync worker), primary only, no cache, no load balancer;
2. + reads from the replicas;
3. + the Redis cache;
4. + nginx over the API replicas, each with its worker processes: the running stack.

Plus two floors in the same run (nginx answering by itself, the bare /healthz through nginx) and
the hot-path ratios (a cached GET and an uncached replica read, each divided by /healthz).
Each stage reports the best throughput whose p99 stays within BENCH_P99_MS, trying a few
connection counts; stages and hot-path runs repeat in BENCH_ROUNDS interleaved rounds, and each
reports its median. Every run also reports the CPU the machine spent on it, wrk's own left out:
how many cores were busy, and the CPU time per request. Prints a table, writes
docs/benchmarks.md and imgs/staircase.png.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest import capacity
from loadtest.docs import replace_section
from stack.exempt import loopback_exempt
from stack.keys import ensure_key
from stack.seed import seed
from stack.settings import REPO, Stack, load_stack

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


def busy_cpu_s(stat: Path = Path("/proc/stat")) -> float:
    """CPU seconds every core of the machine has spent busy since boot; NaN without STAT.

    Busy is user, nice, system, irq and softirq time: not idle or iowait, and not steal (time
    the hypervisor gave to other guests).
    """
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq = (int(n) for n in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    return Result(name, rps, p50, p99, errors, connections, stack_cpu / wall, cpu_us)


def best_within_p99(name: str, url: str, script: str, env: dict[str, str]) -> Result:
    """The highest throughput among CONNECTIONS whose p99 stays within the limit."""
    wrk(name, url, script, CONNECTIONS[0], env)  # warm-up: pools, caches
    results = [wrk(name, url, script, c, env) for c in CONNECTIONS]
    within = [r for r in results if r.p99_ms <= P99_LIMIT_MS and r.errors == 0]
    return max(within or results, key=lambda r: r.rps)


def wait_for(url: str, timeout: float = 30) -> None:
    """Poll URL until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http URL)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s")


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
        [str(stack.venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
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


def staircase(stack: Stack, env: dict[str, str]) -> list[Result]:
    """Stages 1-4 on the Zipf mix, in ROUNDS interleaved rounds; each stage's median round.

    One sweep per stage put minutes between stage 1 and stage 4, and this machine's speed drifts
    over minutes: the same code measured full stack / stage 1 anywhere from 0.83 to 1.79.
    """
    single = f"http://{stack.host}:{SINGLE_PORT}"
    workers = f"{len(stack.apis)} API replicas x {stack.env['GUNICORN_WORKERS']} workers"
    steps: list[tuple[str, dict[str, bool] | None]] = [
        ("1. one API process, primary only", {"replicas": False, "cache": False}),
        ("2. + read replicas", {"replicas": True, "cache": False}),
        ("3. + Redis cache", {"replicas": True, "cache": True}),
        (f"4. + nginx, {workers}", None),  # the running stack
    ]
    rounds: list[list[Result]] = [[] for _ in steps]
    for round_number in range(1, ROUNDS + 1):
        print(f"round {round_number} of {ROUNDS}", flush=True)
        for i, (name, options) in enumerate(steps):
            if options is None:
                rounds[i].append(best_within_p99(name, stack.base_url, "zipf_mix.lua", env))
            else:
                process = single_server(stack, **options)
                try:
                    rounds[i].append(best_within_p99(name, single, "zipf_mix.lua", env))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            print_row(rounds[i][-1])
    results = [median(runs) for runs in rounds]
    print("median of the rounds:")
    for result in results:
        print_row(result)
    return results


def median(runs: list[Result]) -> Result:
    """The run with the median throughput (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def hot_path(stack: Stack, env: dict[str, str]) -> list[Result]:
    """The floors and the hot-path reads, all through nginx at the same connection count."""
    base, conns = stack.base_url, CONNECTIONS[-1]
    runs = [
        ("nginx alone (/lb-health)", "/lb-health", None),
        ("bare /healthz", "/healthz", None),
        (f"cached GET /api/users/{{id}}, {HOT_USERS} hot ids", "", "hot_user.lua"),
        ("uncached replica read", "", "replica_read.lua"),
    ]
    # Interleaved rounds, then the median of each: this machine's throughput drifts over tens of
    # seconds, and a ratio of two runs taken a minute apart would measure the drift. Each run
    # follows a short warm-up of its own, so it measures the steady state: hot keys stay in the
    # near cache in production, but would expire (NEAR_CACHE_TTL_S) between rounds here.
    rounds: list[list[Result]] = [[] for _ in runs]
    for _ in range(ROUNDS):
        for i, (name, path, script) in enumerate(runs):
            wrk(name, base + path, script, conns, env, duration_s=WARMUP_S)
            rounds[i].append(wrk(name, base + path, script, conns, env))
    results = [median(runs) for runs in rounds]
    for result in results:
        print_row(result)
    return results


def print_row(r: Result) -> None:
    """One line of the live table."""
    numbers = f"{r.rps:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7} {r.connections:>5}"
    print(f"{r.name:<44} {numbers} {r.cores:>5.2f} {r.cpu_us:>8,.0f}", flush=True)


def markdown(
    stairs: list[Result], hot: list[Result], ratios: dict[str, float], command: str
) -> str:
    """The results section of docs/benchmarks.md."""

    def rows(results: list[Result], over: str) -> str:
        return "\n".join(
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f}"
            f"{over if r.p99_ms > P99_LIMIT_MS else ''} | {r.errors} | {r.connections} "
            f"| {r.cores:.2f} | {r.cpu_us:,.0f} |"
            for r in results
        )

    every_count_over = " (over the limit at every connection count)"
    head = (
        "| stage | req/s | p50 ms | p99 ms | errors | connections | cores busy "
        "| CPU µs per request |\n|---|---|---|---|---|---|---|---|"
    )
    ratio_rows = "\n".join(f"| {k} | {v:.2f} |" for k, v in ratios.items())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## Latest run\n\n`{command}`, {stamp}, {os.cpu_count()} CPUs, wrk 1 thread, "
        f"{DURATION_S} s per run. Cores busy and CPU per request: the whole machine's CPU time "
        "during the run (`/proc/stat`), less wrk's own.\n\n"
        "### The staircase (Zipf mix, best throughput with p99 ≤ "
        f"{P99_LIMIT_MS:.0f} ms; median of {ROUNDS} interleaved rounds)\n\n"
        f"{head}\n{rows(stairs, every_count_over)}\n\n"
        "![staircase](../imgs/staircase.png)\n\n"
        f"### Floors and the hot path (through nginx; median of {ROUNDS} interleaved rounds)"
        f"\n\n{head}\n{rows(hot, ' (over the bound)')}\n\n"
        f"| ratio | value |\n|---|---|\n{ratio_rows}\n"
    )


def chart(stairs: list[Result], hot: list[Result], path: Path) -> None:
    """A bar chart of requests/s per stage, p99 written on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = stairs + hot[1:2]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    colors = ["#90a4ae", "#64b5f6", "#e57373", "#81c784", "#ffd54f"]
    bars = ax.bar([r.name for r in results], [r.rps for r in results], color=colors[: len(results)])
    for bar, r in zip(bars, results, strict=True):
        ax.annotate(
            f"{r.rps:,.0f}/s\np99 {r.p99_ms:.0f} ms",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_ylabel("requests/s (Zipf mix; floor: bare /healthz)")
    ax.set_title("From one server to the full stack, on this machine")
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=12, ha="right")
    ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def capacity_section(full_stack: Result, command: str) -> str:
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
        f"(staircase stage 4) | {full_stack.rps:,.0f} req/s, p99 {full_stack.p99_ms:.1f} ms, "
        f"{full_stack.errors} errors{'' if within else ' (over the bound)'} |\n"
        f"| headroom factor = sustainable / peak (aim: >= 3) | {headroom:.2f} |\n"
        f"| daily active users this rate serves, same assumptions | "
        f"{headroom * model.dau:,.0f} |\n\n"
        f"On this machine the full stack {verdict}."
    )


def main() -> None:
    """Run the whole staircase and write its outputs (127.0.0.1 exempt from nginx's per-address
    limits meanwhile: the bench measures capacity, not the limiter)."""
    # A stopped bench must not leave its single API server behind: SIGTERM unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with loopback_exempt(load_stack()) as stack:
        run(stack)


def run(stack: Stack) -> None:
    """The staircase, the floors and the hot path on STACK; the docs and the chart."""
    wait_for(f"{stack.internal_url}/readyz", timeout=5)
    ids = seeded_range(stack)
    env = {
        **os.environ,
        "FIRST_ID": str(ids["first_id"]),
        "LAST_ID": str(ids["last_id"]),
        "WRK_LIB": str(WRK_DIR),
        "API_KEY": ensure_key(stack, "bench", "critical"),
        "HOT_USERS": HOT_USERS,
    }
    columns = f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'conns':>5} {'cores':>5}"
    print(f"{'stage':<44} {columns} {'CPU µs/req':>8}")
    stairs = staircase(stack, env)
    hot = hot_path(stack, env)
    healthz = hot[1].rps
    ratios = {
        "cached GET ÷ bare /healthz (target ≥ 0.85)": hot[2].rps / healthz,
        "uncached replica read ÷ bare /healthz (target ≥ 0.6)": hot[3].rps / healthz,
        "full stack ÷ stage 1, Zipf mix at p99 ≤ 50 ms (target ≥ 2)": stairs[3].rps / stairs[0].rps,
    }
    print()
    for name, value in ratios.items():
        print(f"{name:<64} {value:.2f}")
    command = ("make bench " + " ".join(sys.argv[1:])).strip()
    replace_section(
        REPO / "docs" / "benchmarks.md", "bench", markdown(stairs, hot, ratios, command)
    )
    section = capacity_section(stairs[3], command)
    replace_section(REPO / "docs" / "capacity.md", "bench", section)
    chart(stairs, hot, REPO / "imgs" / "staircase.png")
    print("\n" + section.split("\n\n", 1)[1])
    print("\nwrote docs/benchmarks.md, docs/capacity.md and imgs/staircase.png")


if __name__ == "__main__":
    main()
