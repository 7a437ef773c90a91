"""CPU accounting of the load tools: what the whole machine spent, and what their own load
generators (child processes: wrk, Locust) spent, so that the stack's share can be told apart."""

from __future__ import annotations

import math
import os
import resource
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
