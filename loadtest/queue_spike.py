"""`make loadtest-queue`: a burst of writes past what the queue's workers apply, absorbed.

Locust runs the write-spike shape (loadtest/shapes.py: posters only; a few, then SPIKE_USERS for
SPIKE_SECONDS, then a few again) against the running stack, while this command samples, twice a
second, the outbox's depth (rows not yet published, on the primary) and the consumer's lag
(events in the stream no worker has applied yet, from the broker's /jsz). The workers run as
configured (WORKERS); with QUEUE_SPIKE_WORKERS set (default 1) the stack is brought up with that
many for the run and back to its configuration afterwards, so the backlog shows on a small
machine too.

Writes imgs/queue-spike.png (request rate, outbox depth and consumer lag over time) and a section
of docs/messaging.md: the peak write rate, the largest backlog, how long it took to drain, and
the failed requests (the burst must cost none).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pymysql

from loadtest import run as locust_run
from loadtest.harness.docs import replace_section
from stack import queue
from stack.exempt import launcher_up, loopback_exempt
from stack.keys import ensure_key
from stack.settings import REPO, Stack, load_stack

CHART = REPO / "imgs" / "queue-spike.png"
UNLIMITED = {"RATE_LIMIT_CRITICAL_PER_S": "1000000", "RATE_LIMIT_CRITICAL_BURST": "1000000"}
SAMPLE_S = 0.5


def consumer_lag(stack: Stack) -> int | None:
    """Events in the stream the consumer has not had acknowledged (pending + unacked)."""
    for report in queue.reports(stack).values():
        best: dict[str, Any] | None = None
        for account in report.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                for consumer in detail.get("consumer_detail") or []:
                    if consumer.get("name") == stack.env["CONSUMER_NAME"] and (
                        best is None
                        or consumer["delivered"]["stream_seq"] > best["delivered"]["stream_seq"]
                    ):
                        best = consumer
        if best is not None:
            return int(best.get("num_pending", 0)) + int(best.get("num_ack_pending", 0))
    return None


def outbox_depth(stack: Stack) -> int | None:
    """Outbox rows not yet published, on the node that takes writes."""
    try:
        conn = pymysql.connect(
            host=stack.host,
            port=stack.writer.port,
            user=stack.env["MYSQL_ADMIN_USER"],
            password=stack.env["MYSQL_ADMIN_PASSWORD"],
            database=stack.env["MYSQL_DATABASE"],
            connect_timeout=2,
            ssl_disabled=True,  # the stack's nodes have no TLS; PyMySQL would try it
        )
    except pymysql.MySQLError:
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            return int(cursor.fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


class Sampler(threading.Thread):
    """Samples the backlog every SAMPLE_S until stopped: (seconds, outbox depth, consumer lag)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.stop = stack, threading.Event()
        self.samples: list[tuple[float, int | None, int | None]] = []
        self.started = time.time()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), outbox_depth(self.stack), consumer_lag(self.stack)))
            self.stop.wait(SAMPLE_S)


def chart(rows: list[dict[str, str]], samples: list[tuple[float, int | None, int | None]]) -> None:
    """Request rate, outbox depth and consumer lag on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(int(rows[0]["Timestamp"]), int(samples[0][0]))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    t = [int(r["Timestamp"]) - start for r in rows]
    top.plot(t, [float(r["Requests/s"]) for r in rows], color="#1565c0", label="writes/s")
    top.plot(t, [float(r["Failures/s"]) for r in rows], color="#c62828", label="failures/s")
    top.set_ylabel("per second")
    top.legend(loc="upper right")
    top.set_title("make loadtest-queue: a write burst, absorbed by the queue")
    ts = [s[0] - start for s in samples]
    bottom.plot(ts, [s[1] or 0 for s in samples], color="#6a1b9a", label="outbox depth (rows)")
    bottom.plot(ts, [s[2] or 0 for s in samples], color="#2e7d32", label="consumer lag (events)")
    bottom.set_ylabel("waiting")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(CHART, dpi=100)
    plt.close(figure)


def drained_after(samples: list[tuple[float, int | None, int | None]]) -> tuple[int, int, float]:
    """The largest outbox depth, the largest consumer lag, and how long after that peak the lag
    was back to the steady load's few events in flight (at most 1% of the peak, or 10)."""
    peak_outbox = max((s[1] or 0 for s in samples), default=0)
    peak_lag = max((s[2] or 0 for s in samples), default=0)
    peak = next((i for i, s in enumerate(samples) if (s[2] or 0) == peak_lag), 0)
    calm = max(10, peak_lag // 100)
    back = next((s[0] for s in samples[peak:] if (s[2] or 0) <= calm), samples[-1][0])
    return peak_outbox, peak_lag, back - samples[peak][0]


def main() -> int:
    stack = load_stack()
    workers = os.environ.get("QUEUE_SPIKE_WORKERS", "1")
    os.environ["LOAD_SHAPE"] = "write-spike"
    os.environ.setdefault("STACK_STATE", str(stack.state))
    os.environ.setdefault("MAX_P99_MS", "2000")
    os.environ.setdefault("MAX_FAILURE_RATIO", "0")
    if "LOADTEST_API_KEY" not in os.environ:
        os.environ["LOADTEST_API_KEY"] = ensure_key(stack, "loadtest", "critical")
    report = locust_run.REPORTS / datetime.now(UTC).strftime("queue-%Y%m%d-%H%M%S")
    report.mkdir(parents=True)
    configured = stack.env["WORKERS"]
    limits = {name: stack.env[name] for name in UNLIMITED}
    # The burst is about the queue, not the per-key limit (the loadtest key's tier): every
    # `make up` of this run keeps these, and the worker count.
    os.environ.update(UNLIMITED)
    if workers:
        os.environ["WORKERS"] = workers
    print(f"workers: {workers or configured} for this run ({configured} configured)", flush=True)
    launcher_up({})
    sampler = Sampler(stack)
    try:
        with loopback_exempt(stack):
            sampler.start()
            code = locust_run.run_locust(report, stack.base_url)
            # Until the backlog is gone (bounded): the drain is what the chart shows.
            deadline = time.time() + 120
            while time.time() < deadline and (
                outbox_depth(stack) or consumer_lag(stack) or len(sampler.samples) < 2
            ):
                time.sleep(SAMPLE_S)
            time.sleep(2 * SAMPLE_S)
            sampler.stop.set()
            sampler.join()
    finally:
        os.environ.update({**limits, "WORKERS": configured})
        launcher_up({})
    rows = locust_run.history(report)
    chart(rows, sampler.samples)
    peak_outbox, peak_lag, drain_s = drained_after(sampler.samples)
    peak_rate = max((float(r["Requests/s"]) for r in rows), default=0.0)
    failures = sum(int(float(r["Total Failure Count"] or 0)) for r in rows[-1:])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"### A write burst, absorbed: `make loadtest-queue`, {stamp}\n\n"
        f"Posters only, {os.environ.get('SPIKE_USERS', '30')} at the burst, "
        f"{workers or configured} worker(s).\n\n"
        "| peak writes/s | largest outbox depth | largest consumer lag | drained after | "
        "failed requests |\n|---|---|---|---|---|\n"
        f"| {peak_rate:,.0f} | {peak_outbox:,} | {peak_lag:,} | {drain_s:.1f} s | {failures} |\n\n"
        "![a write burst absorbed](../imgs/queue-spike.png)"
    )
    replace_section(REPO / "docs" / "messaging.md", "queue-spike", section)
    print(section)
    return code


if __name__ == "__main__":
    sys.exit(main())
