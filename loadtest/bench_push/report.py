"""The ladder's table and chart."""

from __future__ import annotations

from typing import Any

from loadtest.bench_push.config import CHART, P99_BOUND_S, RATE


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| streams on one process | posts | delivered / expected | delivery p50 ms | p99 ms | "
        "memory per stream KiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['streams']:,} | {row['posts']} | {row['delivered']:,} / {row['expected']:,} | "
            f"{row['p50'] * 1000:.0f} | {row['p99'] * 1000:.0f} | {row['kib_per_stream']:.1f} |"
        )
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = [r["streams"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(streams, [r["p50"] * 1000 for r in rows], marker="o", label="p50")
    left.plot(streams, [r["p99"] * 1000 for r in rows], marker="o", label="p99")
    left.axhline(P99_BOUND_S * 1000, color="#c62828", linestyle="--", label="1 s")
    left.set_xscale("log")
    left.set_xticks(streams, [f"{s:,}" for s in streams])
    left.minorticks_off()
    left.set_xlabel("open streams on one push process")
    left.set_ylabel("commit → client, ms")
    left.legend()
    right.bar([str(s) for s in streams], [r["kib_per_stream"] for r in rows], color="#5c6bc0")
    right.set_xlabel("open streams")
    right.set_ylabel("push worker memory per stream, KiB")
    figure.suptitle(f"make bench-push: posts at {RATE:g}/s to C streams of one push process")
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)
