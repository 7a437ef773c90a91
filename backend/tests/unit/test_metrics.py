"""Metrics in multiprocess mode: every process that imports the app can start on a fresh box."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.settings import REPO


@pytest.mark.parametrize(
    "entry",
    ["import app.metrics", "import app.heartbeat", "import app.cli"],
    ids=["metrics", "heartbeat", "cli"],
)
def test_a_process_importing_the_app_creates_a_missing_metrics_dir(
    entry: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "not-yet" / "metrics"
    result = subprocess.run(
        [sys.executable, "-c", entry],
        cwd=REPO / "backend",
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert metrics_dir.is_dir()
