"""Command line of the native launcher: python3 -m stack {install,up,down,clean,status,...}."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from stack import (
    account,
    compose,
    mysql,
    processes,
    programs,
    queue,
    secrets,
    seed,
    stages,
    supervisor,
)
from stack.install import ensure_installed
from stack.keys import app_cli
from stack.live import live_table
from stack.render import render_all
from stack.settings import Node, Stack, load_stack
from stack.ui import address_rows, step, table
from stack.waiting import until


def wait_for_url(stack: Stack, url: str, done: Callable[[int, bytes], str], timeout: float) -> None:
    """Poll URL until DONE(status, body) finds nothing missing (''), or exit with what was."""
    last = [""]

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http URL)
                last[0] = done(response.status, response.read())
        except urllib.error.HTTPError as error:
            last[0] = done(error.code, error.read())
        except OSError as error:
            last[0] = str(error)
        return not last[0]

    logs = stack.state / "logs"
    until(ready, timeout, f"{url} ready (see {logs})", 0.3, detail=lambda: last[0])


def wait_until_ready(stack: Stack, timeout: float = 90) -> None:
    """Poll /readyz through nginx's internal listener until it answers 200."""
    url = f"{stack.internal_url}/readyz"
    wait_for_url(stack, url, lambda status, _: "" if status == 200 else f"HTTP {status}", timeout)
    step("ready", f"{url} answered 200")


def following(status: int, body: bytes) -> str:
    """What a push process's /healthz says is missing before it follows the stream ('': none)."""
    try:
        state = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    return "" if state.get("status") == "ok" else str(state.get("problem") or state.get("status"))


def wait_for_push(stack: Stack, timeout: float = 90) -> None:
    """Poll each push process's /healthz until its feed follows the stream."""
    for push in stack.pushes:
        wait_for_url(stack, f"http://{stack.host}:{push.port}/healthz", following, timeout)
    step("push", f"{', '.join(p.name for p in stack.pushes)} follow the events stream")


def api_address(stack: Stack, api: Node) -> str:
    """Where replica API listens: its TCP port, else its unix socket (curl --unix-socket)."""
    socket_path = stack.api_socket(api)
    if stack.api_tcp(api) or socket_path is None:
        return f"http://{stack.host}:{api.port}"
    return f"unix:{socket_path}"


def print_summary(stack: Stack) -> None:
    """Where everything is, and how to look inside."""
    database = stack.env["MYSQL_DATABASE"]
    apis = [(api.name, api_address(stack, api), "gunicorn + Flask") for api in stack.apis]
    apis += [
        (push.name, f"http://{stack.host}:{push.port}", "gunicorn + uvicorn: live push")
        for push in stack.pushes
    ]
    brokers = [
        (
            node.name,
            f"nats://{stack.host}:{node.client_port}",
            "make status (leaders, through the system account)",
        )
        for node in stack.nats_nodes
    ]
    print("\n" + table(address_rows(stack, apis) + brokers))
    print(
        f"\nPasswords: MYSQL_ADMIN_PASSWORD (user {stack.env['MYSQL_ADMIN_USER']}), "
        f"MYSQL_APP_PASSWORD (user {stack.env['MYSQL_APP_USER']}) in .env (random, written by "
        "the first make up).\n"
        "DBeaver: new connection, driver MariaDB, host and port from the table, database "
        f"{database}.\nReplication: make repl-status    Logs: {stack.state / 'logs'}\n"
    )


def up(stack: Stack) -> None:
    """Install what is missing, start everything, set up replication and schema, wait for ready."""
    ensure_installed(stack)
    user = account.ensure(stack)
    render_all(stack, user)
    account.hand_over(stack, user)
    step("configs", f"rendered into {stack.state}, servers run as {programs.run_as(user)}")
    mysql.ensure_datadirs(stack, user)
    supervisor.ensure_running(stack)
    mysql.wait_for_databases(stack)
    mysql.ensure_admin_accounts(stack)
    mysql.setup_replication(stack)
    mysql.migrate(stack)
    queue.wait_for_broker(stack)
    wait_until_ready(stack)
    wait_for_push(stack)
    supervisor.verify_supervised(stack)
    step("supervised", "every program RUNNING, every port held by it")
    print_summary(stack)


def clean(stack: Stack) -> None:
    """Stop the stack and delete all of its state: never while one of its servers still runs."""
    supervisor.shutdown(stack)
    if running := processes.stack_processes(stack):
        raise SystemExit(
            f"refusing to delete {stack.state}: {processes.describe(running)} still run"
        )
    shutil.rmtree(stack.state, ignore_errors=True)
    step("clean", f"removed {stack.state}")


def status(stack: Stack) -> None:
    """Each process and the replication state."""
    if orphans := processes.orphans(stack):
        print(
            f"orphans (no supervisord watches them; make up or make down stops them): "
            f"{processes.describe(orphans)}"
        )
    if supervisor.supervisord_pid(stack) is None:
        print("stack is not running")
        return
    print(supervisor.ctl(stack, "status", check=False).stdout)
    writer = stack.writer
    print(f"the primary (takes writes): mysql {writer.name}, {stack.host}:{writer.port}")
    mysql.replication_status(stack)
    print("\n" + live_table(stack))
    try:
        print("\n" + queue.broker_table(stack, queue.reports(stack)))
    except SystemExit as error:  # the venv's NATS client could not ask
        print(f"\nbroker: {error}")
    print("\n" + queue.queue_table(stack))


def seed_users(stack: Stack) -> None:
    """Bulk-load SEED_USERS users (default 100000) and their posts; wait for the replicas."""
    seed.seed(stack, int(os.environ.get("SEED_USERS", "100000")))


def stage(stack: Stack) -> None:
    """Run the stack as step STAGE (1-5) of the chapter (stack/stages.py, docs/tutorial.md)."""
    n = stages.number(stack)
    if n is None:
        raise SystemExit("usage: make stage N=1..5 (docs/tutorial.md)")
    stack = Stack({**stack.env, **stages.overrides(n)})
    config = stack.state / "supervisord.conf"
    before = config.read_text() if config.exists() else ""
    if supervisor.supervisord_pid(stack) is None or not before:
        up(stack)  # nothing runs yet: the whole start, as this stage
    else:
        user = account.ensure(stack)
        render_all(stack, user)
        account.hand_over(stack, user)
        if stages.only_the_stage_changed(before, config.read_text()):
            supervisor.apply_programs(stack)
            supervisor.verify_supervised(stack)
        else:  # other settings changed too: `up` applies them the careful way
            up(stack)
    current = stages.STAGES[n]
    if current.single_server:
        url = stages.server_url(stack)
        wait_for_url(stack, f"{url}/healthz", lambda s, _: "" if s == 200 else f"HTTP {s}", 60)
    else:
        url = stack.base_url
        wait_until_ready(stack)
    step(f"stage {n}", current.title)
    print(
        f"\nStage {n}: send requests to {url} (curl -si {url}/api/users/1). What to look at,"
        " load and break: docs/tutorial.md. `make up` returns to the full stack.\n"
    )


COMMANDS = {
    "install": ensure_installed,
    "up": up,
    "down": supervisor.shutdown,
    "clean": clean,
    "status": status,
    "repl-status": mysql.replication_status,
    "replicate": mysql.setup_replication,
    "failover": mysql.failover,
    "switchover": mysql.switchover,
    "rebuild-node": mysql.rebuild_node,
    "migrate": mysql.migrate,
    "seed": seed_users,
    "stage": stage,
}


def main(argv: list[str]) -> None:
    """Dispatch one command."""
    if argv[:1] == ["app"]:  # python3 -m stack app keys create ...: the API's operator CLI
        raise SystemExit(app_cli(load_stack(), *argv[1:]).returncode)
    if len(argv) == 1 and argv[0] in compose.COMMANDS:  # the compose way to run
        compose.main(argv[0])
        return
    if len(argv) != 1 or argv[0] not in COMMANDS:
        names = ",".join([*COMMANDS, *compose.COMMANDS])
        raise SystemExit(f"usage: python3 -m stack {{{names},app ...}}")
    if argv[0] in (
        "up",
        "stage",
    ):  # before the settings are read: no stack runs on the example secrets
        secrets.ensure_env_file()
    COMMANDS[argv[0]](load_stack())


if __name__ == "__main__":
    main(sys.argv[1:])
