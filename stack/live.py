"""The live picture for `make status`: request rate and cache hit ratio per API replica.

Reads each replica's /metrics twice, a second apart, on its unix socket or its TCP port
(standard library only, no Prometheus).
"""

from __future__ import annotations

import re
import time

from stack import apihttp
from stack.settings import Node, Stack
from stack.ui import table

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>[0-9.e+-]+)$")


def scrape(stack: Stack, api: Node) -> dict[str, float]:
    """Totals of the counters `make status` shows, from API's /metrics ({} if unreachable)."""
    totals: dict[str, float] = {}
    try:
        status, body = apihttp.get(stack, api, "/metrics", timeout=2)
    except OSError:
        return totals
    if status != 200:
        return totals
    text = body.decode()
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match["name"], match["labels"] or "", float(match["value"])
        if name == "cache_requests_total":
            outcome = re.search(r'outcome="(\w+)"', labels)
            key = f"cache_{outcome.group(1).lower()}" if outcome else "cache_other"
            totals[key] = totals.get(key, 0.0) + value
        elif name == "http_requests_total" and 'route="/metrics"' not in labels:
            totals["requests"] = totals.get("requests", 0.0) + value
    return totals


def live_table(stack: Stack, interval_s: float = 1.0) -> str:
    """One row per API replica: requests/s over INTERVAL_S, and its cache hit ratio so far."""
    before = {api.name: scrape(stack, api) for api in stack.apis}
    time.sleep(interval_s)
    rows = [("api", "req/s", "cache hits", "hit ratio")]
    for api in stack.apis:
        name, now = api.name, scrape(stack, api)
        if not now:
            rows.append((name, "-", "-", "unreachable"))
            continue
        rate = (now.get("requests", 0.0) - before[name].get("requests", 0.0)) / interval_s
        cache_total = sum(v for k, v in now.items() if k.startswith("cache_"))
        hits = now.get("cache_hit", 0.0)
        ratio = f"{hits / cache_total:.0%}" if cache_total else "-"
        rows.append((name, f"{rate:.1f}", f"{hits:.0f}/{cache_total:.0f}", ratio))
    return table(rows)
