"""The bench-queue report: its table says what was measured, ratios against R3."""

from __future__ import annotations

from loadtest.bench_queue.report import table
from loadtest.harness.stats import percentile


def test_percentile_takes_the_value_at_the_share() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51
    assert percentile(values, 0.99) == 100


def test_the_table_gives_each_level_its_ratio_to_r3_and_its_losses() -> None:
    def level(rate: float, lost: int) -> dict[str, object]:
        return {
            "rate": [rate],
            "lat": [1.0, 2.0],
            "lost_kill": {"acked": 100, "errors": 0, "lost": 0},
            "lost_disk": {"acked": 100, "errors": 3, "lost": lost},
        }

    text = table({"core": level(40000, 50), "R1": level(20000, 100), "R3": level(10000, 0)})
    rows = text.splitlines()[2:]
    assert rows[0].startswith("| core | acks=0 | 40,000 | 4.00 |")
    assert rows[1].endswith("| 100 / **0** | 100 / **100** |")
    assert rows[2].startswith("| R3 | acks=all | 10,000 | 1.00 |")


def test_the_spike_drains_when_the_lag_is_back_to_a_few_events() -> None:
    from loadtest.queue_spike import drained_after

    samples = [(0.0, 1, 0), (1.0, 2, 500), (2.0, 3, 1000), (3.0, 1, 400), (4.0, 2, 8), (5.0, 2, 3)]
    assert drained_after(samples) == (3, 1000, 2.0)
