"""CPU accounting of the load tools: what the whole machine spent, and what their own load
generators (child processes: wrk, Locust) spent, so that the stack's share can be told apart."""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path


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


# Process groups of a CPU breakdown: the first pattern found in a process's command line names
# its group (the stack's programs, the bench's own servers, and the naive peer's).
GROUPS = (
    ("naive peer", "naive_peer"),
    ("nginx", "nginx"),
    ("API (gunicorn)", "app.processes.api"),
    ("push", "app.processes.push"),
    ("Redis", "redis-server"),
    ("MariaDB", "mariadbd"),
    ("NATS", "nats-server"),
    ("relays", "app.processes.relay"),
    ("workers", "app.processes.worker"),
    ("heartbeat", "app.processes.heartbeat"),
    ("edge purger", "app.processes.edge_purger"),
    ("supervisord", "supervisord"),
)


def group_of(command_line: str) -> str | None:
    """The group a process belongs to, by its command line (None: none of the stack's)."""
    return next((name for name, pattern in GROUPS if pattern in command_line), None)


def cpu_by_group(proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU seconds (user + system) each group's live processes have spent since they started."""
    ticks = os.sysconf("SC_CLK_TCK")
    spent: dict[str, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if (group := group_of(command)) is not None:
            spent[group] = spent.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return spent


def per_request_us(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """µs of CPU per request by group between two snapshots (a process started meanwhile counts
    from zero; one that ended meanwhile is lost: keep the runs short of restarts)."""
    return {
        group: (after[group] - before.get(group, 0.0)) / max(requests, 1) * 1e6
        for group in sorted(after)
        if after[group] - before.get(group, 0.0) > 0
    }


def idle(seconds: float) -> dict[str, float]:
    """Cores each group keeps busy over SECONDS of whatever load there is (none: its idle cost)."""
    before, started = cpu_by_group(), time.monotonic()
    time.sleep(seconds)
    after, wall = cpu_by_group(), time.monotonic() - started
    return {g: (after[g] - before.get(g, 0.0)) / wall for g in sorted(after)}


if __name__ == "__main__":  # python -m loadtest.harness.cpu [seconds]: idle CPU by group
    import sys

    spent = idle(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
    for group, cores in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{group:<16} {cores:6.3f} cores")
    print(f"{'all':<16} {sum(spent.values()):6.3f} cores")
