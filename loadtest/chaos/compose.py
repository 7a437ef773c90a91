"""`make compose-chaos`: the native chaos suite's faults, on the compose way to run.

A compose project of its own (own name, ports and volumes) is brought up exactly as
`make compose-up` does; then, under the same bounded client load as `make chaos`
(loadtest/chaos/: acknowledged writes recorded, read back with their token, then checked on
every node), one fault at a time:

- an API container crashes (SIGKILL of its main process from the host, as the OOM killer
  would; Docker's restart policy must bring it back, and nginx must follow it);
- the replica's container is stopped, then started (reads move to the primary, then back).

`docker kill` is not used for the crash: Docker treats it as an operator's stop and does not
apply the restart policy after it (seen on Docker 20.10, Debian's docker.io). The table goes to
docs/reliability.md (CHAOS_REPORT=0 leaves it alone). The e2e test (backend/tests/compose/)
runs the same scenarios through run().
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from loadtest.chaos.checks import run_scenario
from loadtest.chaos.config import FAULT_S
from loadtest.chaos.report import table, verdict, write_report
from loadtest.chaos.scenarios import Scenario
from stack.compose import Project, build, compose, prepare, up
from stack.engine import docker, stop_engine
from stack.keys import key_printed
from stack.settings import Stack

# The compose project of the e2e test and of `make compose-chaos`: never the user's.
TEST_PROJECT = Project(
    name="ztm-compose-test",
    overrides={
        "STACK_DIR": ".stack-compose-test",
        "NGINX_PORT": "19080",
        "NGINX_INTERNAL_PORT": "19081",
        "MYSQL_PRIMARY_PORT": "19308",
        "MYSQL_REPLICA_PORT": "19307",
        "REDIS_PORT": "19380",
        "APP_ENV": "test",
        # All clients share one critical key; its limit is not what these tests are about.
        "RATE_LIMIT_CRITICAL_PER_S": "1000",
        "RATE_LIMIT_CRITICAL_BURST": "2000",
        # As `make compose-up` has it (the native integration stack exports EDGE_CACHE=off into
        # the environment of the same pytest run; compose would take it from there).
        "EDGE_CACHE": "on",
    },
)


def containers(project: Project, service: str) -> list[str]:
    """Ids of SERVICE's containers, in replica order."""
    ids = compose(project, "ps", "-q", service, capture=True).stdout.split()
    names = {cid: inspect(cid, "{{.Name}}") for cid in ids}
    return sorted(ids, key=lambda cid: names[cid])


def inspect(container: str, template: str) -> str:
    """One field of `docker inspect`."""
    return docker("inspect", "-f", template, container).stdout.strip()


def healthy(container: str) -> bool:
    return inspect(container, "{{.State.Status}} {{.State.Health.Status}}") == "running healthy"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> float:
    """Seconds until CHECK holds; an AssertionError naming WHAT at the deadline."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.3)
    return time.monotonic() - started


class ApiCrash:
    """SIGKILL of one API container's main process; the restart policy must bring it back."""

    def __init__(self, project: Project) -> None:
        self.project, self.container, self.restarts_before = project, "", 0
        self.restarted_by_policy = False

    def inject(self, _: Stack) -> None:
        self.container = containers(self.project, "api")[-1]
        self.restarts_before = int(inspect(self.container, "{{.RestartCount}}"))
        pid = int(inspect(self.container, "{{.State.Pid}}"))
        os.kill(pid, 9)

    def heal(self, _: Stack) -> None:
        """Nothing is started by hand: wait for Docker's restart policy and the healthcheck."""
        wait_until(lambda: healthy(self.container), "the killed API container healthy again")
        restarts = int(inspect(self.container, "{{.RestartCount}}"))
        self.restarted_by_policy = restarts > self.restarts_before


def replica_stop(project: Project) -> Scenario:
    """The replica's container stopped, then started (replication resumes by itself)."""

    def heal(_: Stack) -> None:
        compose(project, "start", "mysql-replica", capture=True)
        replica = containers(project, "mysql-replica")[0]
        wait_until(lambda: healthy(replica), "the replica container healthy again")

    return Scenario(
        "DB replica container stopped",
        lambda _: compose(project, "stop", "mysql-replica", capture=True),
        heal,
    )


def run(project: Project, api_key: str, fault_s: float = FAULT_S) -> list[dict[str, Any]]:
    """Every compose fault under load, one row each (a crash row says whether Docker restarted)."""
    stack, crash = project.stack(), ApiCrash(project)
    rows = [
        run_scenario(
            stack,
            Scenario("kill -9 of an API container", crash.inject, crash.heal),
            fault_s,
            api_key,
        )
    ]
    rows[0]["restarted by policy"] = crash.restarted_by_policy
    rows.append(run_scenario(stack, replica_stop(project), fault_s, api_key))
    return rows


def create_key(project: Project, name: str) -> str:
    """A critical key made inside an API container, as a user of compose would make one."""
    command = (
        "python",
        "-m",
        "app.processes.cli",
        "keys",
        "create",
        "--tier",
        "critical",
        "--name",
        name,
    )
    return key_printed(compose(project, "exec", "-T", "api", *command, capture=True))


def main() -> int:
    """Bring the test project up, run every fault, report, remove the project."""
    started = prepare(TEST_PROJECT)
    try:
        build(TEST_PROJECT)
        up(TEST_PROJECT)
        rows = run(TEST_PROJECT, create_key(TEST_PROJECT, "chaos"))
    finally:
        compose(TEST_PROJECT, "down", "-v", "--remove-orphans", capture=True)
        if started:
            stop_engine(TEST_PROJECT.state)
    print("\n" + table(rows))
    ok = all(verdict(r) for r in rows) and rows[0]["restarted by policy"]
    if os.environ.get("CHAOS_REPORT", "1") == "1":
        restarted = "yes" if rows[0]["restarted by policy"] else "**no**"
        note = f"The killed API container was restarted by Docker's restart policy: {restarted}."
        write_report(
            rows, "make compose-chaos", "compose-chaos", "Latest run, docker compose", note
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
