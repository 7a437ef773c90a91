"""`make bench` (the package's docstring says what it measures)."""

from __future__ import annotations

import signal
import sys

from loadtest import results_box
from loadtest.bench.hot_path import hot_path
from loadtest.bench.peer import naive_peer
from loadtest.bench.report import capacity_section, chart, markdown, targets
from loadtest.bench.staircase import edge_on, seeded_range, staircase, wrk_env
from loadtest.harness.docs import replace_section
from loadtest.harness.waits import wait_for
from stack.exempt import loopback_exempt
from stack.settings import REPO, Stack, load_stack


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
        stairs, mix = staircase(stack, peer, env)
        hot = hot_path(stack, peer, env, ids["last_id"] - ids["first_id"] + 1)
    ratios = targets(stairs, hot)
    print()
    for target in ratios:
        status = "met" if target.met else "NOT met"
        print(f"{target.name:<58} {target.value:>6.2f}  ({target.target}: {status})")
    command = ("make bench " + " ".join(sys.argv[1:])).strip()
    replace_section(
        REPO / "docs" / "benchmarks.md", "bench", markdown(stairs, mix, hot, ratios, command)
    )
    # The model's users write too: the capacity is the mix's.
    section = capacity_section(mix[0].result, mix[1].result, command)
    replace_section(REPO / "docs" / "capacity.md", "bench", section)
    chart(stairs, REPO / "imgs" / "staircase.png")
    results_box.refresh()
    print("\n" + section.split("\n\n", 1)[1])
    print("\nwrote docs/benchmarks.md, docs/capacity.md, README's results and imgs/staircase.png")


if __name__ == "__main__":
    main()
