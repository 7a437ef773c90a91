"""`make bench-semisync`: what lossless semi-synchronous replication costs a write, measured as a
ratio in one run.

On the running stack, BENCH_ROUNDS interleaved rounds of: `make up` with MYSQL_SEMI_SYNC=off,
then on (setup-replication.sh applies it to the running servers), each followed by a wrk run of
writes only (PATCH a random user, loadtest/wrk/writes.lua) at BENCH_WRITE_CONNECTIONS. Prints
throughput and latency per setting and on ÷ off; writes a section of docs/benchmarks.md. The
configured setting is restored at the end.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from loadtest.bench.config import ROUNDS, WARMUP_S
from loadtest.bench.staircase import seeded_range, wrk_env
from loadtest.harness.docs import replace_section
from loadtest.harness.wrk import DURATION_S, Result, median, median_ratio, print_row, wrk
from stack.exempt import LOOPBACK, launcher_up
from stack.settings import REPO, load_stack

CONNECTIONS = int(os.environ.get("BENCH_WRITE_CONNECTIONS", "8"))
# The bench measures what a commit costs, not the limiters: 127.0.0.1 exempt from nginx's
# per-address limits, and the critical tier (the bench's key) far above what one machine writes.
UNLIMITED = {
    "NGINX_RATE_LIMIT_EXEMPT": LOOPBACK,
    "RATE_LIMIT_CRITICAL_PER_S": "1000000",
    "RATE_LIMIT_CRITICAL_BURST": "1000000",
}


def main() -> None:
    """Alternate semi-sync off and on under a write-only load; print and record the ratios."""
    stack = load_stack()
    env = wrk_env(stack, seeded_range(stack))
    runs: dict[str, list[Result]] = {"off": [], "on": []}
    try:
        for round_number in range(1, ROUNDS + 1):
            print(f"round {round_number} of {ROUNDS}", flush=True)
            for setting in ("off", "on"):
                launcher_up({**UNLIMITED, "MYSQL_SEMI_SYNC": setting})
                name = f"writes, semi-sync {setting}"
                url = stack.base_url
                wrk(name, url, "writes.lua", CONNECTIONS, env, duration_s=WARMUP_S)
                runs[setting].append(wrk(name, url, "writes.lua", CONNECTIONS, env))
                print_row(runs[setting][-1])
    finally:
        launcher_up({})  # the configured settings again
    off, on = median(runs["off"]), median(runs["on"])
    ratio = median_ratio(runs["on"], runs["off"])
    print(
        f"\nsemi-sync on ÷ off, writes/s: {ratio:.2f}; p50 {on.p50_ms:.1f} vs {off.p50_ms:.1f} ms"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} "
        f"| {r.cpu_us:,.0f} |"
        for r in (off, on)
    )
    section = (
        f"### Semi-synchronous replication: what a write pays\n\n`make bench-semisync`, {stamp}, "
        f"{os.cpu_count()} CPUs, wrk 1 thread, {CONNECTIONS} connections, {DURATION_S} s per run, "
        f"median of {ROUNDS} interleaved rounds.\n\n"
        "| run | writes/s | p50 ms | p99 ms | errors | CPU µs per write |\n"
        "|---|---|---|---|---|---|\n"
        f"{rows}\n\nSemi-sync on ÷ off, writes/s (median of the per-round ratios): "
        f"**{ratio:.2f}**; p50 latency on ÷ off: {on.p50_ms / off.p50_ms:.2f}.\n"
    )
    replace_section(REPO / "docs" / "benchmarks.md", "bench-semisync", section)
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
