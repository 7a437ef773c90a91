"""The staircase as a path (docs/tutorial.md): `make stage N=1..5` runs the stack as step N of the
chapter, the way `make bench` measures each step, so that a learner can see its headers, load it
and break it.

Stages 1-3 are one extra API server beside the stack: gunicorn with one sync worker (the book's
single web server) on STAGE_PORT, reading the primary only (1), then the replicas (2), then
through the Redis cache (3). Stage 4 is nginx over the API replicas with the edge cache off, and
stage 5 the full stack as `make up` runs it. The other servers of the stack (replicas, Redis,
the broker, the queue's programs) keep running in every stage: a stage is the path a request
takes, not a smaller install. `make up` alone returns to the full stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.account import Account
from stack.programs import api_program
from stack.settings import Stack

SERVER = "stage-server"


@dataclass(frozen=True)
class Stage:
    """One step of the chapter: what it adds, and how a request reaches it."""

    title: str
    single_server: bool  # answered by the one extra API server on STAGE_PORT (stages 1-3)
    replicas: bool = False  # the single server reads the replicas
    cache: bool = False  # the single server reads through Redis
    edge: bool = False  # nginx keeps anonymous answers


STAGES = {
    1: Stage("one server: one API process with one worker on the primary", single_server=True),
    2: Stage("+ read replicas: the same server reads the replicas", True, replicas=True),
    3: Stage("+ Redis cache: the same server reads through the cache", True, True, cache=True),
    4: Stage("+ load balancer: nginx over the API replicas, edge cache off", False),
    5: Stage("+ edge cache: the full stack, as `make up` runs it", False, edge=True),
}


def number(stack: Stack) -> int | None:
    """The stage STAGE asks for (None: the full stack, as `make up` runs it)."""
    wanted = stack.env.get("STAGE", "").strip()
    if not wanted:
        return None
    if not wanted.isdigit() or int(wanted) not in STAGES:
        raise SystemExit(f"STAGE must be one of {', '.join(map(str, STAGES))}, not {wanted!r}")
    return int(wanted)


def current(stack: Stack) -> Stage | None:
    """The stage STAGE asks for, if any."""
    n = number(stack)
    return None if n is None else STAGES[n]


def overrides(n: int) -> dict[str, str]:
    """The settings stage N changes for `make up`: the edge is on only in stage 5."""
    return {"STAGE": str(n), "EDGE_CACHE": "on" if STAGES[n].edge else "off"}


def server_ports(stack: Stack) -> list[int]:
    """The single server's port, in stages 1-3."""
    stage = current(stack)
    return [int(stack.env["STAGE_PORT"])] if stage and stage.single_server else []


def server_url(stack: Stack) -> str:
    """Where stages 1-3 answer."""
    return f"http://{stack.host}:{stack.env['STAGE_PORT']}"


def server_program(stack: Stack, account: Account | None) -> list[str]:
    """[program:stage-server] in stages 1-3: the API with one sync worker on STAGE_PORT, with the
    replicas and the cache as the stage has them (stages 1 and 2 have no Redis in the picture,
    so their writers are not rate limited either)."""
    stage = current(stack)
    if stage is None or not stage.single_server:
        return []
    env = {
        **stack.api_env(),
        "API_NAME": SERVER,
        "API_BIND": f"{stack.host}:{stack.env['STAGE_PORT']}",
        "API_UNIX_SOCKET": "",
        "GUNICORN_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(stack.state / "metrics" / SERVER),
        "API_PID_FILE": str(stack.state / "run" / f"{SERVER}.pid"),
        "CACHE_ENABLED": "true" if stage.cache else "false",
        "RATE_LIMIT_ENABLED": "true" if stage.cache else "false",
        "DB_REPLICAS": stack.api_env()["DB_REPLICAS"] if stage.replicas else "",
    }
    return [api_program(stack, SERVER, account, env)]


def sections(config: str) -> dict[str, str]:
    """supervisord.conf's sections by name."""
    found: dict[str, str] = {}
    name = ""
    for line in config.splitlines():
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
        found[name] = found.get(name, "") + line + "\n"
    return found


def only_the_stage_changed(before: str, after: str) -> bool:
    """Whether two renders of supervisord.conf differ in the stage server's section alone (then
    `make stage` applies it without replacing anything else; else it runs the whole `up`)."""
    ours = f"program:{SERVER}"
    old, new = sections(before), sections(after)
    old.pop(ours, None)
    new.pop(ours, None)
    return old == new
