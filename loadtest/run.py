"""`make loadtest`: Locust, headless, against the running stack; HTML, CSV and PNG charts.

Writes loadtest/reports/<timestamp>/ (Locust's report.html and CSVs, requests.png, latency.png)
and copies the charts to imgs/loadtest-*.png. Settings (environment): LOADTEST_API_KEY (the
writers' key; default: the stack's own "loadtest" key, created on first use), LOADTEST_USERS
(20), LOADTEST_SPAWN_RATE (5), LOADTEST_DURATION (30s), LOADTEST_PROCESSES (1; more runs Locust's
distributed mode natively), LOAD_SHAPE, MAX_P99_MS, MAX_FAILURE_RATIO, LOADTEST_HOST.
Exits with Locust's exit code: non-zero when a threshold was missed.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest import capacity, results_box
from loadtest.harness.cpu import busy_cpu_s, children_cpu_s
from loadtest.harness.docs import replace_section
from stack.exempt import loopback_exempt
from stack.keys import ensure_key
from stack.settings import REPO, load_stack

REPORTS = Path(os.environ.get("LOADTEST_REPORTS", REPO / "loadtest" / "reports"))
# 0 keeps imgs/ untouched (the smoke test in `make test`).
COPY_CHARTS = os.environ.get("LOADTEST_COPY_CHARTS", "1") == "1"


def run_locust(report: Path, host: str) -> int:
    """Run Locust headless into REPORT; its exit code."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "loadtest" / "locustfile.py"),
        "--headless",
        "--host",
        host,
        "--csv",
        str(report / "locust"),
        "--csv-full-history",
        "--html",
        str(report / "report.html"),
        "--only-summary",
    ]
    if (processes := os.environ.get("LOADTEST_PROCESSES", "1")) != "1":
        command += ["--processes", processes]  # distributed mode: a master and N workers
    if not os.environ.get("LOAD_SHAPE"):
        command += [
            "-u",
            os.environ.get("LOADTEST_USERS", "20"),
            "-r",
            os.environ.get("LOADTEST_SPAWN_RATE", "5"),
            "-t",
            os.environ.get("LOADTEST_DURATION", "30s"),
        ]
    return subprocess.run(command, cwd=REPO, check=False).returncode


def history(report: Path) -> list[dict[str, str]]:
    """The aggregated rows of Locust's per-second stats history."""
    with (report / "locust_stats_history.csv").open() as rows:
        return [row for row in csv.DictReader(rows) if row["Name"] == "Aggregated"]


def charts(report: Path) -> list[Path]:
    """requests.png (req/s, failures/s, users) and latency.png (p50, p95, p99) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = history(report)
    if not rows:
        return []
    start = int(rows[0]["Timestamp"])
    t = [int(r["Timestamp"]) - start for r in rows]

    def series(column: str) -> list[float]:
        return [float(r[column]) if r[column] not in ("", "N/A") else 0.0 for r in rows]

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, series("Requests/s"), label="requests/s", color="#1565c0")
    ax.plot(t, series("Failures/s"), label="failures/s", color="#c62828")
    ax.set_xlabel("seconds")
    ax.set_ylabel("per second")
    users = ax.twinx()
    users.plot(t, series("User Count"), label="users", color="#9e9e9e", linestyle="--")
    users.set_ylabel("users")
    fig.legend(loc="upper left")
    ax.set_title("Throughput and failures")
    fig.tight_layout()
    fig.savefig(report / "requests.png", dpi=100)

    fig, ax = plt.subplots(figsize=(9, 4))
    for column, color in (("50%", "#2e7d32"), ("95%", "#f9a825"), ("99%", "#c62828")):
        ax.plot(t, series(column), label=f"p{column.rstrip('%')}", color=color)
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms")
    ax.set_title("Response time percentiles")
    ax.legend()
    fig.tight_layout()
    fig.savefig(report / "latency.png", dpi=100)
    plt.close("all")
    return [report / "requests.png", report / "latency.png"]


# The share of the model's peak a run must hold to have reached it.
REACHED_SHARE = 0.95


@dataclass(frozen=True)
class Cpu:
    """The cores the machine was busy during a run: Locust's own processes, and the rest (the
    stack, and anything else running), out of how many."""

    generator: float
    stack: float
    cores: int

    def limit(self, processes: int) -> str:
        """Which side ran out of CPU: each Locust process is one Python thread of work."""
        if self.generator >= 0.85 * processes:
            return f"the load generator ({processes} Locust process(es), each a core at most)"
        if self.generator + self.stack >= 0.9 * self.cores:
            return "the machine's CPU, mostly the stack's"
        return "neither side's CPU (latency or pacing)"


def measured_run(report: Path, host: str) -> tuple[int, Cpu]:
    """Run Locust; its exit code and the CPU each side spent, as average busy cores."""
    busy, generator, started = busy_cpu_s(), children_cpu_s(), time.monotonic()
    code = run_locust(report, host)
    wall = max(time.monotonic() - started, 1e-9)
    spent = children_cpu_s() - generator
    return code, Cpu(spent / wall, (busy_cpu_s() - busy - spent) / wall, os.cpu_count() or 1)


def dau_peak_section(report: Path, code: int, cpu: Cpu) -> tuple[str, bool]:
    """docs/capacity.md's Locust part: did the stack hold the model's peak rate, within the
    thresholds? A run that did not reach the rate is never "met"; the section says which side
    ran out of CPU."""
    rows = history(report)
    most = max((int(r["User Count"]) for r in rows), default=0)
    held = sorted(float(r["Requests/s"]) for r in rows if int(r["User Count"]) == most)
    reached = held[len(held) // 2] if held else 0.0
    with (report / "locust_stats.csv").open() as stats:
        total = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = capacity.model().peak_rps
    rate_ok = reached >= REACHED_SHARE * target
    met = code == 0 and rate_ok
    verdict = "met" if met else ("missed" if rate_ok else "**not reached**")
    processes = int(os.environ.get("LOADTEST_PROCESSES", "1"))
    return (
        f"### Held by Locust: `LOAD_SHAPE=dau-peak make loadtest`, {stamp}\n\n"
        "| target (model peak) | reached (median req/s at full users) | p99 ms (whole run) "
        "| failures | verdict | cores busy: Locust / the rest (of "
        f"{cpu.cores}) |\n|---|---|---|---|---|---|\n"
        f"| {target:,.0f} req/s | {reached:,.0f} req/s | {total['99%']} | "
        f"{total['Failure Count']} of {total['Request Count']} | "
        f"{verdict} (rate >= {REACHED_SHARE:.0%} of the target, p99 <= "
        f"{os.environ.get('MAX_P99_MS', '500')} ms, failures <= "
        f"{os.environ.get('MAX_FAILURE_RATIO', '0.01')}) | {cpu.generator:.2f} / "
        f"{cpu.stack:.2f} |\n\n"
        f"Out of CPU: {cpu.limit(processes)}.",
        met,
    )


def main() -> int:
    """Run, chart, copy the charts where docs show them."""
    stack = load_stack()
    report = REPORTS / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    report.mkdir(parents=True)
    host = os.environ.get("LOADTEST_HOST", stack.base_url)
    os.environ.setdefault("STACK_STATE", str(stack.state))
    if "LOADTEST_API_KEY" not in os.environ:  # writers need a key: one of the stack's own
        os.environ["LOADTEST_API_KEY"] = ensure_key(stack, "loadtest", "critical")
    print(f"Locust against {host}, report in {report}", flush=True)
    if os.environ.get("LOAD_SHAPE") == "dau-peak":
        os.environ.setdefault("MAX_P99_MS", "50")  # the model's peak is held within 50 ms p99
    if host == stack.base_url:
        with loopback_exempt(stack):
            code, cpu = measured_run(report, host)
    else:
        code, cpu = measured_run(report, host)
    print(f"cores busy: Locust {cpu.generator:.2f}, the rest {cpu.stack:.2f} (of {cpu.cores})")
    for chart in charts(report):
        if COPY_CHARTS:
            shutil.copy(chart, REPO / "imgs" / f"loadtest-{chart.name}")
    if os.environ.get("LOAD_SHAPE") == "dau-peak":
        section, met = dau_peak_section(report, code, cpu)
        if COPY_CHARTS:
            replace_section(REPO / "docs" / "capacity.md", "loadtest-dau-peak", section)
            results_box.refresh()
        print(section)
        code = code or (0 if met else 1)  # a rate not reached is a missed run
    print(f"report: {report / 'report.html'}; charts: {report}/*.png")
    return code


if __name__ == "__main__":
    sys.exit(main())
