"""Metrics in multiprocess mode: every process that imports the app can start on a fresh box."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from app.metrics import child
from stack.settings import REPO


@pytest.mark.parametrize(
    "entry",
    [
        "import app.metrics",
        "import app.processes.heartbeat",
        "import app.processes.relay",
        "import app.processes.worker",
        "import app.processes.edge_purger",
        "import app.processes.cli",
    ],
    ids=["metrics", "heartbeat", "relay", "worker", "edge purger", "cli"],
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


DASHBOARD = REPO / "observability" / "grafana" / "dashboards" / "zero-to-million.json"
SERIES_OF = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def series_defined() -> set[str]:
    """Every series name the API, the relays and workers, the push processes and the edge purger
    can export."""
    from prometheus_client import REGISTRY

    import app.edge.metrics
    import app.metrics
    import app.push.metrics
    import app.queue.metrics  # noqa: F401 (each registers its metrics on import)

    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in SERIES_OF.get(family.type, ())
    }


def series_queried(expr: str) -> set[str]:
    """The series names a PromQL expression reads (label matchers, groupings, ranges and
    function names left out)."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)|\"[^\"]*\"", " ", expr)
    names = {
        found.group()
        for found in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", expr)
        if not expr[found.end() :].lstrip().startswith("(")  # a function
    }
    return names - {"and", "or", "unless", "on", "ignoring"}


def test_every_series_the_dashboard_plots_is_one_the_code_exports() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {
        (panel["title"], name)
        for panel in panels
        for target in panel["targets"]
        for name in series_queried(target["expr"])
    }
    assert len({name for _, name in queried}) >= 20, "the parser lost the expressions"
    unknown = sorted((title, name) for title, name in queried if name not in series_defined())
    assert not unknown, f"plotted but never exported: {unknown}"


def test_a_labelled_child_is_looked_up_once_and_counts_as_labels_would() -> None:
    counter = Counter(
        "unit_child_total", "A test counter", ["outcome"], registry=CollectorRegistry()
    )
    assert child(counter, "HIT") is child(counter, "HIT")
    assert child(counter, "HIT") is not child(counter, "MISS")
    child(counter, "HIT").inc()
    child(counter, "HIT").inc()
    assert counter.labels("HIT")._value.get() == 2
