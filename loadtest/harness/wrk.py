"""One wrk run, parsed, with the CPU the machine spent on it (wrk's own left out), and the medians
of interleaved rounds."""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from dataclasses import dataclass

from loadtest.harness.cpu import busy_cpu_s, children_cpu_s, cpu_by_group, per_request_us
from stack.settings import REPO

WRK_DIR = REPO / "loadtest" / "wrk"
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "5"))


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
    # That CPU per request by process group (loadtest/harness/cpu.py GROUPS): where it went.
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


def print_row(r: Result, ratio: float = math.nan) -> None:
    """One line of the live table."""
    numbers = f"{r.rps:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7} {r.connections:>5}"
    vs = "" if math.isnan(ratio) else f"  x{ratio:.2f} of the peer"
    print(f"{r.name[:60]:<60} {numbers} {r.cores:>5.2f} {r.cpu_us:>8,.0f}{vs}", flush=True)
