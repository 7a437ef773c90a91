"""`LOAD_SHAPE=dau-peak make loadtest`'s verdict: a rate not reached is never "met", and the
section says which side ran out of CPU."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadtest import run


def write_report(folder: Path, rates: list[float]) -> None:
    """Locust's CSVs: a history whose full-users rows run at RATES, and the totals."""
    columns = ["Timestamp", "User Count", "Name", "Requests/s", "Failures/s", "50%", "95%", "99%"]
    with (folder / "locust_stats_history.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        for n, rate in enumerate(rates):
            writer.writerow(
                dict(zip(columns, [n, 105, "Aggregated", rate, 0, 5, 20, 40], strict=True))
            )
    with (folder / "locust_stats.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, ["Name", "99%", "Failure Count", "Request Count"])
        writer.writeheader()
        writer.writerow({"Name": "Aggregated", "99%": 40, "Failure Count": 0, "Request Count": 9})


@pytest.mark.parametrize(
    ("rate_share", "code", "met"), [(1.0, 0, True), (0.5, 0, False), (1.0, 1, False)]
)
def test_a_run_is_met_only_at_the_model_s_rate_within_its_thresholds(
    tmp_path: Path, rate_share: float, code: int, met: bool
) -> None:
    target = run.capacity.model().peak_rps
    write_report(tmp_path, [target * rate_share] * 5)
    section, verdict = run.dau_peak_section(tmp_path, code, run.Cpu(1.0, 0.6, 2))
    assert verdict is met
    assert ("| met (" in section) is met
    if rate_share < run.REACHED_SHARE:
        assert "**not reached**" in section


@pytest.mark.parametrize(
    ("cpu", "processes", "side"),
    [
        (run.Cpu(0.97, 0.9, 2), 1, "the load generator"),
        (run.Cpu(0.5, 1.4, 2), 1, "the machine's CPU"),
        (run.Cpu(0.3, 0.4, 2), 1, "neither side"),
    ],
)
def test_the_side_out_of_cpu_is_named(cpu: run.Cpu, processes: int, side: str) -> None:
    assert cpu.limit(processes).startswith(side)
