"""The compose way to run: `python3 -m stack compose-up | compose-down | compose-clean |
compose-failover | compose-switchover`.

One compose project (docker-compose.yml) on an engine found or started by stack/engine.py. Its
settings are the native ones (.env, else .env.example, then the process environment), so the
printed addresses are the ones compose publishes. The test suite runs its own project with its
own name and ports (backend/tests/compose/).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stack import engine, secrets
from stack.install import ensure_venv
from stack.settings import REPO, Stack, load_env
from stack.ui import address_rows, step, table

# Settings docker-compose.yml reads that a project may override (ports first).
PUBLISHED = (
    "NGINX_PORT",
    "NGINX_INTERNAL_PORT",
    "MYSQL_PRIMARY_PORT",
    "MYSQL_REPLICA_PORT",
    "REDIS_PORT",
)


@dataclass(frozen=True)
class Project:
    """One compose project: its name, its settings and the state dir its engine pid lives in."""

    name: str = "zero-to-million"
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**load_env(), **self.overrides}

    @property
    def state(self) -> Path:
        return (REPO / self.env["STACK_DIR"]).resolve()

    @property
    def env_file(self) -> Path:
        return REPO / ".env" if (REPO / ".env").exists() else REPO / ".env.example"

    def stack(self) -> Stack:
        """The project as a Stack of published ports, for the native tools (SQL, chaos checks)."""
        env = self.env
        return Stack(
            {
                **env,
                "REPLICAS": "1",
                "MYSQL_REPLICA_PORTS": env["MYSQL_REPLICA_PORT"],
            }
        )


def compose(
    project: Project, *args: str, capture: bool = False, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`docker compose` on PROJECT, with its settings in the environment (they override .env)."""
    command = ["docker", "compose", "--project-directory", str(REPO), "-p", project.name]
    return subprocess.run(
        [*command, "--env-file", str(project.env_file), *args],
        cwd=REPO,
        env={**os.environ, **project.env},
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
    )


def prepare(project: Project) -> bool:
    """Secrets, engine, compose CLI, base image and build CAs; True when the engine was started
    here."""
    secrets.ensure_env_file()
    ensure_venv(project.stack())
    started = engine.ensure_engine(project.state)
    engine.ensure_compose_cli(project.stack().venv)
    engine.ensure_base_image(project.state)
    engine.ensure_build_certs()
    return started


def build(project: Project) -> None:
    """Build every image of the default stack (cached layers are reused): one line per image."""
    step("images", "docker compose build (the first build takes a few minutes)")
    result = compose(project, "build", capture=True)
    lines = (line.strip() for line in (result.stdout + result.stderr).splitlines())
    built = sorted({line for line in lines if line.startswith("Image ") and line.endswith("Built")})
    for line in built:
        step("images", line)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
        raise SystemExit(f"docker compose build failed:\n{tail}")


def up(project: Project) -> None:
    """Start the project and wait until every service is healthy or has completed."""
    step("compose up", f"project {project.name}, waiting for every healthcheck")
    result = compose(project, "up", "-d", "--no-build", "--wait", "--wait-timeout", "240")
    if result.returncode != 0:
        compose(project, "ps", "-a")
        raise SystemExit("docker compose up failed: see `docker compose logs` (states above)")


def summary(project: Project) -> str:
    """Where everything is, as the native `make up` prints it."""
    stack = project.stack()
    apis = [(f"api x{stack.env['API_REPLICAS']}", "(behind nginx)", "docker compose ps api")]
    rows = address_rows(stack, apis)
    keys = (
        "docker compose exec api python -m app.processes.cli keys create --tier standard --name me"
    )
    return f"\n{table(rows)}\n\nAn API key for writes: {keys}\nLogs: docker compose logs -f\n"


def compose_up(project: Project) -> None:
    """make compose-up: everything needed, then the stack, then where it is."""
    prepare(project)
    build(project)
    up(project)
    print(summary(project))


def compose_down(project: Project, *, volumes: bool = False) -> None:
    """make compose-down (data kept) / compose-clean (volumes removed); then the engine, if ours."""
    if engine.engine_answers():
        compose(project, "down", *(["-v"] if volumes else []), "--remove-orphans")
    engine.stop_engine(project.state)


def compose_clean(project: Project) -> None:
    """make compose-clean: compose-down, removing the volumes too."""
    compose_down(project, volumes=True)


def change_primary(project: Project, mode: str) -> None:
    """mysql/failover.sh MODE (failover | switchover) in the project's one-shot service."""
    step(f"compose {mode}", "docker compose run mysql-failover (mysql/failover.sh)")
    result = compose(
        project,
        "--profile",
        "ops",
        "run",
        "--rm",
        "--no-deps",
        "mysql-failover",
        "failover.sh",
        mode,
    )
    if result.returncode != 0:
        raise SystemExit(result.returncode)


# The database services: a failover fences whichever of them runs but does not answer.
DATABASE_SERVICES = ("mysql-primary", "mysql-replica")


def compose_failover(project: Project) -> None:
    """make compose-failover: the primary is lost; fence it if it still runs, then promote the
    replica."""
    for service in DATABASE_SERVICES:
        fence_if_hung(project, service)
    change_primary(project, "failover")


def fence_if_hung(project: Project, service: str, answer_within_s: float = 5.0) -> None:
    """Kill SERVICE's container and keep it down when it runs but its server does not answer a
    ping (frozen: a paused VM, a stopped process). Left alone, it could wake up writable after
    the replica was promoted, with statements in flight from before the freeze that it would
    then commit; `docker compose up` starts it again read-only, as a replica."""
    running = compose(project, "ps", "--status", "running", "-q", service, capture=True)
    if not running.stdout.strip():
        return
    ping = ["exec", "-T", service, "docker-entrypoint.sh", "healthcheck"]  # SELECT 1, by socket
    try:
        if compose(project, *ping, capture=True, timeout=answer_within_s).returncode == 0:
            return
    except subprocess.TimeoutExpired:
        pass
    step("fence", f"{service} runs but does not answer: killed, kept down")
    compose(project, "kill", "-s", "KILL", service, capture=True)
    compose(project, "stop", service, capture=True)


def compose_switchover(project: Project) -> None:
    """make compose-switchover: a planned change of primary."""
    change_primary(project, "switchover")


COMMANDS = {
    "compose-up": compose_up,
    "compose-down": compose_down,
    "compose-clean": compose_clean,
    "compose-failover": compose_failover,
    "compose-switchover": compose_switchover,
}


def main(command: str) -> None:
    """Run one compose command on the default project."""
    COMMANDS[command](Project())


if __name__ == "__main__":
    main(sys.argv[1])
