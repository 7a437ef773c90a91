"""A short Locust run in `make test`, so the scenarios and the report pipeline cannot rot."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.settings import REPO, Stack
from tests.integration.conftest import TEST_STACK_ENV
from tests.integration.helpers import Api

pytestmark = pytest.mark.integration


def test_a_short_locust_run_meets_its_thresholds(stack: Stack, tmp_path: Path) -> None:
    seeded = subprocess.run(
        [sys.executable, "-m", "stack", "seed"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **TEST_STACK_ENV, "SEED_USERS": "2000"},
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    env = {
        **os.environ,
        **TEST_STACK_ENV,
        "LOADTEST_HOST": stack.base_url,
        "STACK_STATE": str(stack.state),
        "LOADTEST_REPORTS": str(tmp_path),
        "LOADTEST_COPY_CHARTS": "0",
        "LOADTEST_USERS": "10",
        "LOADTEST_SPAWN_RATE": "10",
        "LOADTEST_DURATION": "6s",
        "MAX_P99_MS": "2000",
        "MAX_FAILURE_RATIO": "0",
    }
    run = subprocess.run(
        [sys.executable, "-m", "loadtest.run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "thresholds met" in run.stdout + run.stderr
    report = next(tmp_path.iterdir())
    with (report / "locust_stats.csv").open() as rows:
        stats = {row["Name"]: row for row in csv.DictReader(rows)}
    assert int(stats["Aggregated"]["Request Count"]) > 50
    assert int(stats["/api/users/[id] (read own write)"]["Failure Count"]) == 0
    assert (report / "report.html").exists()
    assert (report / "requests.png").exists()
    assert (report / "latency.png").exists()


def test_make_profile_measures_every_request_kind(api: Api) -> None:
    api.create_user("Profile", "Me")  # something to read, whichever test ran before
    run = subprocess.run(
        [sys.executable, "-m", "tools.hotpath"],  # as make profile runs it
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **TEST_STACK_ENV,
            "PYTHONPATH": f"{REPO / 'backend'}:{REPO}",
            "PROFILE_REQUESTS": "20",
            "PROFILE_ROUNDS": "1",
        },
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = {line[:30].strip(): line[30:].split() for line in run.stdout.splitlines()[1:]}
    kinds = [
        "bare Flask endpoint",
        "bare Flask + one PyMySQL read",
        "/healthz",
        "cached GET /api/users/{id}",
        "uncached replica read",
    ]
    assert list(rows) == kinds
    calls = {kind: int(rows[kind][0]) for kind in kinds}
    # Each kind does the work of the one before it, and more.
    assert calls["bare Flask endpoint"] < calls["/healthz"] < calls["cached GET /api/users/{id}"]
    assert calls["cached GET /api/users/{id}"] < calls["uncached replica read"]
    # The least a read can do, and the API's read, which also routes, pools, guards and counts.
    assert calls["bare Flask endpoint"] < calls["bare Flask + one PyMySQL read"]
    assert calls["bare Flask + one PyMySQL read"] < calls["uncached replica read"]
