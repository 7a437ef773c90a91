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
from datetime import UTC, datetime
from pathlib import Path

from loadtest import capacity
from loadtest.docs import replace_section
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


def dau_peak_section(report: Path, code: int) -> str:
    """docs/capacity.md's Locust part: did the stack hold the model's peak rate?"""
    rows = history(report)
    most = max((int(r["User Count"]) for r in rows), default=0)
    held = sorted(float(r["Requests/s"]) for r in rows if int(r["User Count"]) == most)
    reached = held[len(held) // 2] if held else 0.0
    with (report / "locust_stats.csv").open() as stats:
        total = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = capacity.model().peak_rps
    return (
        f"### Held by Locust: `LOAD_SHAPE=dau-peak make loadtest`, {stamp}\n\n"
        "| target (model peak) | reached (median req/s at full users) | p99 ms (whole run) "
        "| failures | thresholds |\n|---|---|---|---|---|\n"
        f"| {target:,.0f} req/s | {reached:,.0f} req/s | {total['99%']} | "
        f"{total['Failure Count']} of {total['Request Count']} | "
        f"{'met' if code == 0 else 'missed'} (p99 <= {os.environ.get('MAX_P99_MS', '500')} ms, "
        f"failures <= {os.environ.get('MAX_FAILURE_RATIO', '0.01')}) |"
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
    if host == stack.base_url:
        with loopback_exempt(stack):
            code = run_locust(report, host)
    else:
        code = run_locust(report, host)
    for chart in charts(report):
        if COPY_CHARTS:
            shutil.copy(chart, REPO / "imgs" / f"loadtest-{chart.name}")
    if COPY_CHARTS and os.environ.get("LOAD_SHAPE") == "dau-peak":
        section = dau_peak_section(report, code)
        replace_section(REPO / "docs" / "capacity.md", "loadtest-dau-peak", section)
        print(section)
    print(f"report: {report / 'report.html'}; charts: {report}/*.png")
    return code


if __name__ == "__main__":
    sys.exit(main())
