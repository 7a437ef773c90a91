"""`make bench`'s own arithmetic: wrk's latencies, the machine's busy CPU, the results table."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest

from loadtest.bench import peer, report
from loadtest.bench.report import Target, markdown
from loadtest.bench.staircase import watch_s
from loadtest.harness import accesslog
from loadtest.harness.cpu import busy_cpu_s
from loadtest.harness.wrk import Result, Row, median, median_ratio, to_ms
from stack.settings import Stack


def test_wrk_latencies_are_read_in_milliseconds() -> None:
    assert [to_ms("45.00us"), to_ms("1.23ms"), to_ms("1.02s")] == pytest.approx([0.045, 1.23, 1020])
    with pytest.raises(ValueError, match="unexpected wrk latency"):
        to_ms("fast")


def test_busy_cpu_counts_user_nice_system_irq_and_softirq_not_idle_iowait_or_steal(
    tmp_path: Path,
) -> None:
    stat = tmp_path / "stat"
    # cpu: user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 20 30 4000 500 6 7 800 0 0\ncpu0 50 10 15 2000 250 3 3 400 0 0\n")
    assert busy_cpu_s(stat) == pytest.approx(163 / os.sysconf("SC_CLK_TCK"))
    assert math.isnan(busy_cpu_s(tmp_path / "missing"))


def test_the_results_table_shows_each_runs_cores_cpu_per_request_and_ratio_to_the_peer() -> None:
    stage = Result("1. one API process, primary only", 475.4, 14.9, 34.5, 0, 8, 0.953, 2425.2)
    peer = Result("peer: uncached list read", 600, 30.0, 45.0, 0, 32, 1.8, 3000)
    read = Result("uncached replica read", 750, 42.1, 69.4, 0, 32, 1.9, 2650)
    target = Target("a ratio", 1.5, 2.0)
    mix = Result("Zipf mix (5% writes): the full stack", 900, 5.0, 20.0, 0, 16, 1.9, 2100)
    mix_peer = Result("Zipf mix (5% writes): naive peer", 1000, 4.0, 15.0, 0, 16, 1.9, 1900)
    text = markdown(
        [Row(stage, None, math.nan)],
        [Row(mix, mix_peer, 0.9), Row(mix_peer, None, math.nan)],
        [Row(read, peer, 1.27)],
        [target],
        "make bench",
    )
    assert (
        "| Zipf mix (5% writes): the full stack | 900 | 5.0 | 20.0 | 0 | 16 | 1.90 | 2,100 "
        "| Zipf mix (5% writes): naive peer: 1,000/s, 1,900 µs | **0.90** | 1.11 |" in text
    )
    assert (
        "| 1. one API process, primary only | 475 | 14.9 | 34.5 | 0 | 8 | 0.95 | 2,425 | | |"
        in text
    )
    over = (
        "| uncached replica read | 750 | 42.1 | 69.4 (over the bound) | 0 | 32 | 1.90 | 2,650 "
        "| uncached list read: 600/s, 3,000 µs | **1.27** | 0.88 |"
    )
    assert over in text
    assert "| cores busy | CPU µs per request | the peer's same workload |" in text
    assert "| a ratio | 1.50 | ≥ 2 | **not met** |" in text


def test_the_steady_state_table_shows_the_edge_share_growing_slice_by_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slices = [(30_000, 0.45, 1000.0, 800.0), (66_000, 0.6, 1200.0, 800.0)]
    monkeypatch.setattr(report, "STEADY", slices)
    table = report.steady_table()
    assert "| 30 | 30,000 | 45% | 1,000 | 800 | 1.25 |" in table
    assert "| 60 | 66,000 | 60% | 1,200 | 800 | 1.50 |" in table
    monkeypatch.setattr(report, "STEADY", [])
    assert "BENCH_STEADY_WARMUP_S=0" in report.steady_table()


def test_a_ratio_to_the_peer_is_the_median_of_the_rounds_ratios() -> None:
    def run(rps: float) -> Result:
        return Result("r", rps, 1, 2, 0, 8, 1.0, 100)

    ours = [run(100), run(300), run(200)]
    theirs = [run(100), run(100), run(400)]
    assert median_ratio(ours, theirs) == 1.0  # ratios 1.0, 3.0, 0.5
    assert median(ours).rps == 200


def test_the_edge_share_counts_across_a_rotation_of_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "nginx-access.log"
    log.write_bytes(b'{"edge":"MISS"}\n')
    start = accesslog.log_position(log)
    with log.open("ab") as writing:
        writing.write(b'{"edge":"HIT"}\n')
    log.replace(tmp_path / "nginx-access.log.1")  # rotated while the runs wrote it
    log.write_bytes(b'{"edge":"HIT"}\n{"edge":"MISS"}\n')
    assert accesslog.logged_since(log, start) == [
        b'{"edge":"HIT"}\n',
        b'{"edge":"HIT"}\n',
        b'{"edge":"MISS"}\n',
    ]


def test_stage_3_warms_past_its_near_caches_watch_unless_direct_loads_are_off() -> None:
    stack = Stack({"CACHE_TOMBSTONE_TTL_S": "30", "CACHE_DIRECT_LOADS": "true"})
    assert watch_s(stack) == 30
    assert watch_s(Stack({"CACHE_TOMBSTONE_TTL_S": "2.5", "CACHE_DIRECT_LOADS": "true"})) == 3
    assert watch_s(Stack({"CACHE_TOMBSTONE_TTL_S": "30", "CACHE_DIRECT_LOADS": "false"})) == 0


def test_the_peer_refuses_a_port_something_already_answers_on() -> None:
    # A peer left by an interrupted run would be measured in place of the new one.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"port {port} is taken"):
            peer.refuse_taken((port,))
    peer.refuse_taken((port,))  # closed: free again
