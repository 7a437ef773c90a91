"""The compose end-to-end stack: the images and compose file users run, on a real engine.

The project has its own name, ports and volumes (loadtest/chaos/compose.py TEST_PROJECT), so it
never touches a stack the user runs. It is brought up the way `make compose-up` does it (an
engine found or started, the base image made if missing, images built, `up --wait`), and at the
end removed with its volumes; a dockerd this run started is stopped (by its pid file). The wall
time of each phase is printed at the end of the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from loadtest.chaos.compose import TEST_PROJECT, create_key
from stack.compose import Project, build, compose, prepare, up
from stack.engine import stop_engine
from stack.settings import Stack
from tests.integration.helpers import Api, Databases

PHASES: list[tuple[str, float]] = []


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Record the wall time of one phase of the compose run."""
    started = time.monotonic()
    try:
        yield
    finally:
        PHASES.append((name, time.monotonic() - started))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how long each phase of the compose run took."""
    if PHASES:
        terminalreporter.section("compose end-to-end: wall time per phase")
        for name, seconds in PHASES:
            terminalreporter.write_line(f"{name:<44} {seconds:7.1f} s")


@pytest.fixture(scope="session")
def project() -> Iterator[Project]:
    """The compose test project, up and healthy; removed with its volumes afterwards."""
    with phase("engine, compose CLI, base image, build CAs"):
        started = prepare(TEST_PROJECT)
    try:
        with phase("image builds"):
            build(TEST_PROJECT)
        with phase("docker compose down -v of a project left by an earlier run"):
            # Its volumes would hold databases made with another run's secrets (KEEP_TEST_STACK=1
            # keeps them): the replication setup could not log in to them.
            compose(TEST_PROJECT, "down", "-v", "--remove-orphans", capture=True)
        with phase("docker compose up --wait"):
            up(TEST_PROJECT)
        yield TEST_PROJECT
    finally:
        if os.environ.get("KEEP_TEST_STACK") != "1":
            with phase("docker compose down -v (and the engine, if started)"):
                compose(TEST_PROJECT, "down", "-v", "--remove-orphans", capture=True)
                if started:
                    stop_engine(TEST_PROJECT.state)


@pytest.fixture(scope="session")
def stack(project: Project) -> Stack:
    """The project seen through its published ports."""
    return project.stack()


@pytest.fixture(scope="session")
def api_key(project: Project) -> str:
    """A critical key, made with `docker compose exec api python -m app.processes.cli keys
    create`."""
    return create_key(project, "compose-tests")


@pytest.fixture
def api(stack: Stack, api_key: str) -> Iterator[Api]:
    """An HTTP client on the project's nginx; it writes with the key."""
    with Api(stack.base_url, api_key, stack.internal_url) as client:
        yield client


@pytest.fixture(scope="session")
def dbs(stack: Stack) -> Databases:
    """Direct SQL on the published database ports."""
    return Databases(stack)
