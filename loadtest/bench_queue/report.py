"""The section of docs/benchmarks.md and the chart `make bench-queue` writes."""

from __future__ import annotations

import statistics
from typing import Any

from loadtest.bench_queue.runs import LEVELS
from loadtest.harness.stats import percentile
from stack.settings import REPO

CHART = REPO / "imgs" / "queue-ack-levels.png"


def table(results: dict[str, dict[str, Any]]) -> str:
    r3 = statistics.median(results["R3"]["rate"])
    lines = [
        "| level | like Kafka's | msg/s (median) | ÷ R3 | publish p50 ms | p99 ms | "
        "leader killed: acked (core: sent) / lost | leader killed, disk lost: acked / lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    kafka = {"core": "acks=0", "R1": "acks=1", "R3": "acks=all"}
    for level in LEVELS:
        found = results[level]
        rate = statistics.median(found["rate"])
        kill, disk = found["lost_kill"], found["lost_disk"]
        lines.append(
            f"| {level} | {kafka[level]} | {rate:,.0f} | {rate / r3:.2f} | "
            f"{percentile(found['lat'], 0.5):.2f} | {percentile(found['lat'], 0.99):.2f} | "
            f"{kill['acked']:,} / **{kill['lost']:,}** | {disk['acked']:,} / **{disk['lost']:,}** |"
        )
    return "\n".join(lines)


def chart(results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [statistics.median(results[lv]["rate"]) for lv in LEVELS]
    p99 = [percentile(results[lv]["lat"], 0.99) for lv in LEVELS]
    lost = [
        100 * results[lv]["lost_disk"]["lost"] / max(results[lv]["lost_disk"]["acked"], 1)
        for lv in LEVELS
    ]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for axis, values, title in zip(
        axes,
        (rates, p99, lost),
        (
            "throughput, msg/s",
            "publish p99, ms",
            "% of acknowledged (core: sent) lost\nleader killed, its disk lost",
        ),
        strict=True,
    ):
        axis.bar(LEVELS, values, color=["#90a4ae", "#7e57c2", "#2e7d32"])
        axis.set_title(title, fontsize=10)
        for x, value in enumerate(values):
            axis.annotate(
                f"{value:,.0f}" if value >= 10 else f"{value:.2f}",
                (x, value),
                ha="center",
                va="bottom",
                fontsize=9,
            )
    figure.suptitle(
        "make bench-queue: NATS JetStream ack levels (core ≈ acks=0, R1 ≈ acks=1, R3 ≈ acks=all)"
    )
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)
