"""What `make bench` writes: docs/benchmarks.md's table and targets, the CPU breakdown, the
staircase chart and docs/capacity.md's measured part."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest import capacity
from loadtest.bench.config import P99_LIMIT_MS, ROUNDS, STEADY_SLICE_S
from loadtest.bench.staircase import EDGE_HITS, MIX_EDGE_HITS, STEADY, STEP_RATIOS
from loadtest.harness.wrk import DURATION_S, Result, Row


def middle(values: list[float]) -> float:
    """The median round's value (NaN for none)."""
    return sorted(values)[len(values) // 2] if values else math.nan


def steady_table() -> str:
    """The steady-state warm-up, slice by slice: the edge's share grows with the traffic served."""
    if not STEADY:
        return "(no steady-state warm-up: BENCH_STEADY_WARMUP_S=0)"
    lines = [
        "| after (s) | requests the full stack served | edge's share of the slice "
        "| full stack req/s | peer req/s | ÷ peer |",
        "|---|---|---|---|---|---|",
    ]
    for n, (served, share, ours, theirs) in enumerate(STEADY, start=1):
        lines.append(
            f"| {n * STEADY_SLICE_S} | {served:,} | {share:.0%} | {ours:,.0f} | {theirs:,.0f} "
            f"| {ours / theirs:.2f} |"
        )
    return "\n".join(lines)


def markdown(
    stairs: list[Row], mix: list[Row], hot: list[Row], ratios: list[Target], command: str
) -> str:
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
        "### The steady state: what the edge holds after minutes of traffic\n\n"
        "Before the first round, the full stack (edge on) and then the peer each serve the Zipf "
        "reads, slice after slice, at the same connection count; the edge's share of each slice "
        "(nginx's access log):\n\n"
        f"{steady_table()}\n\n"
        "### The staircase (Zipf reads, best throughput with p99 ≤ "
        f"{P99_LIMIT_MS:.0f} ms; median of {ROUNDS} interleaved rounds)\n\n"
        f"{head}\n{rows(stairs, every_count_over)}\n\n"
        "![staircase](../imgs/staircase.png)\n\n"
        "### The Zipf mix: the same reads with 5% writes (PATCH of a Zipf-drawn user), "
        f"in the same rounds\n\n{head}\n{rows(mix, every_count_over)}\n\n"
        f"The edge answered {middle(MIX_EDGE_HITS):.0%} of the full stack's requests of the mix "
        f"(the median round; {middle(EDGE_HITS):.0%} of the reads alone): each write purges its "
        "user's copies, and the hottest users are written the most.\n\n"
        f"### Floors and the hot path (through nginx; median of {ROUNDS} interleaved rounds)"
        f"\n\n{head}\n{rows(hot, ' (over the bound)')}\n\n"
        f"### Targets\n\n| ratio | value | target | status |\n|---|---|---|---|\n{ratio_rows}\n\n"
        f"{breakdown([*stairs, *mix, *hot])}"
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
        Target("Zipf reads: full stack (stage 5) ÷ peer, p99 ≤ 50 ms", stairs[4].ratio, 2.5),
        Target("Zipf reads: share of stage 5's requests the edge answered", middle(EDGE_HITS), 0.6),
        *(
            Target(f"Zipf reads: stage {n + 2} ÷ stage {n + 1}", ratio, 1.0)
            for n, ratio in enumerate(STEP_RATIOS)
        ),
        Target("Zipf reads: stage 4 (no edge) ÷ peer, p99 ≤ 50 ms", stairs[3].ratio, 2.0),
        Target("cached GET (near) ÷ bare /healthz", near.result.rps / bare.result.rps, 0.85),
        Target("uncached list read ÷ bare /healthz", listing.result.rps / bare.result.rps, 0.6),
        Target(
            "full stack (stage 5) ÷ stage 1, Zipf reads",
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
    ax.set_ylabel(f"requests/s, Zipf reads, p99 ≤ {P99_LIMIT_MS:.0f} ms")
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
        f"| full stack, Zipf mix (reads and 5% writes), best throughput with p99 <= "
        f"{P99_LIMIT_MS:.0f} ms | {full_stack.rps:,.0f} req/s, p99 {full_stack.p99_ms:.1f} ms, "
        f"{full_stack.errors} errors{'' if within else ' (over the bound)'} |\n"
        f"| the naive peer on the same mix, same machine and run | {peer.rps:,.0f} req/s, "
        f"p99 {peer.p99_ms:.1f} ms (headroom {peer.rps / model.peak_rps:.2f}) |\n"
        f"| headroom factor = sustainable / peak (aim: >= 3) | {headroom:.2f} |\n"
        f"| daily active users this rate serves, same assumptions | "
        f"{headroom * model.dau:,.0f} |\n\n"
        f"On this machine the full stack {verdict}."
    )
