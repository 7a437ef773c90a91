"""`docker compose stop` on the compose way to run: every service ends on its own stop signal,
cleanly (exit status 0).

Runs last (it stops the project; the session's teardown then removes it). A container that ignores
its stop signal -- a process that is PID 1 without a handler of its own, to which the kernel does
not deliver default-action signals -- holds `docker compose stop`/`down` for its whole grace
period and is then killed with SIGKILL (exit 137), losing whatever it held.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from stack.compose import Project, compose

pytestmark = pytest.mark.compose

KILLED = 137  # 128 + SIGKILL: what a container that outlived its grace period exits with


def containers(project: Project) -> list[dict[str, Any]]:
    """The project's containers, one-shots and stopped ones too."""
    listing = compose(project, "ps", "-a", "--format", "json", capture=True).stdout
    return [json.loads(line) for line in listing.splitlines() if line.strip()]


def test_every_service_ends_on_its_own_stop_signal(project: Project) -> None:
    running = {c["Name"] for c in containers(project) if c["State"] == "running"}
    assert running
    started = time.monotonic()
    stopped = compose(project, "stop", capture=True)
    took = time.monotonic() - started
    assert stopped.returncode == 0, stopped.stderr
    after = [c for c in containers(project) if c["Name"] in running]
    assert all(c["State"] == "exited" for c in after), after
    killed = sorted(c["Name"] for c in after if c["ExitCode"] == KILLED)
    assert not killed, f"killed after their grace period: {killed}"
    unclean = {c["Name"]: c["ExitCode"] for c in after if c["ExitCode"] != 0}
    assert not unclean, f"ended with an error status: {unclean}"
    print(f"\ncompose stop: {len(running)} containers ended by their stop signal in {took:.1f}s")
