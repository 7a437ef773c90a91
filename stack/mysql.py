"""MariaDB lifecycle steps of the native stack: datadirs, admin account, replication, schema."""

from __future__ import annotations

import os
import subprocess
from functools import partial

from stack import supervisor
from stack.account import Account
from stack.install import venv_bin
from stack.programs import supervisor_program
from stack.settings import REPO, Node, Stack
from stack.templates import render_template
from stack.ui import step
from stack.waiting import until

MYSQL_CONF = REPO / "mysql" / "conf"
INSTANCE_TEMPLATE = MYSQL_CONF / "instance.cnf.template"
REPLICATION_SCRIPT = REPO / "mysql" / "setup-replication.sh"


def ensure_datadirs(stack: Stack, account: Account | None = None) -> None:
    """Initialise the datadir of each MariaDB node that has none, owned by ACCOUNT; existing
    data is kept."""
    for db in stack.databases:
        home = stack.state / "mysql" / db.name
        if (home / "data" / "mysql").is_dir():
            step(f"mysql {db.name}", "datadir exists, kept")
            continue
        step(f"mysql {db.name}", "initialising datadir")
        subprocess.run(
            [
                "mariadb-install-db",
                f"--defaults-file={home / 'my.cnf'}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                *([f"--user={account.name}"] if account else []),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def socket_sql(
    stack: Stack, db: Node, statement: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run STATEMENT as root over the node's unix socket (root authenticates by socket), within
    TIMEOUT seconds when given (subprocess.TimeoutExpired after it)."""
    sock = stack.state / "mysql" / db.name / "mysqld.sock"
    return subprocess.run(
        ["mariadb", "--no-defaults", "-S", str(sock), "-uroot", "--batch", "-e", statement],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def answers(stack: Stack, db: Node) -> bool:
    """Whether node DB answers a query over its socket."""
    return socket_sql(stack, db, "SELECT 1").returncode == 0


def wait_for_databases(stack: Stack, timeout: float = 60) -> None:
    """Poll each node's socket until it answers, with a deadline."""
    for db in stack.databases:
        until(
            partial(answers, stack, db),
            timeout,
            f"mysql {db.name} answering (see {stack.state / 'logs'})",
            0.2,
        )
    step("mysql", f"{len(stack.databases)} node(s) answering")


def sql_string(value: str) -> str:
    """VALUE as a quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def ensure_admin_accounts(stack: Stack) -> None:
    """The admin account (MYSQL_ADMIN_USER@'%') on each node, and every account's password as the
    settings say now, kept out of the binlog.

    Each node gets its own local admin account (as the project's MariaDB image does in docker), so
    the replication script can reach a replica before it replicates anything. It is a named
    account, not root: root answers on the node's own socket only (to the launcher, as root), and
    a `root@'%'` left by an older stack is dropped. Passwords are set on
    every `make up`: a rotated secret in .env, or a stack made with the example secrets before
    they were generated, is brought to .env's values (replicas re-pointed, see below).
    """
    env = stack.env
    accounts = [
        (env["MYSQL_APP_USER"], env["MYSQL_APP_PASSWORD"]),
        (env["MYSQL_REPL_USER"], env["MYSQL_REPL_PASSWORD"]),
    ]
    admin = f"{sql_string(env['MYSQL_ADMIN_USER'])}@'%'"
    password = sql_string(env["MYSQL_ADMIN_PASSWORD"])
    statement = "".join(
        [
            "SET SESSION sql_log_bin = 0;",
            f"CREATE USER IF NOT EXISTS {admin} IDENTIFIED BY {password};",
            f"ALTER USER {admin} IDENTIFIED BY {password};",
            f"GRANT ALL PRIVILEGES ON *.* TO {admin} WITH GRANT OPTION;",
            "DROP USER IF EXISTS 'root'@'%';",
            *(
                f"ALTER USER IF EXISTS {sql_string(user)}@'%' IDENTIFIED BY {sql_string(pw)};"
                for user, pw in accounts
            ),
        ]
    )
    for db in stack.databases:
        result = socket_sql(stack, db, statement)
        if result.returncode != 0:
            raise SystemExit(f"mysql {db.name}: admin account: {result.stderr.strip()}")
        follow_replication_password(stack, db)


def follow_replication_password(stack: Stack, db: Node) -> None:
    """A replica that connects to its primary with another password than MYSQL_REPL_PASSWORD
    (the one in its master.info) is re-pointed with the current one."""
    info = stack.state / "mysql" / db.name / "data" / "master.info"
    lines = info.read_text().splitlines() if info.is_file() else []
    password = stack.env["MYSQL_REPL_PASSWORD"]
    if len(lines) < 6 or lines[5] == password:
        return
    result = socket_sql(
        stack,
        db,
        f"STOP REPLICA;CHANGE MASTER TO MASTER_PASSWORD = {sql_string(password)};START REPLICA;",
    )
    if result.returncode != 0:
        raise SystemExit(f"mysql {db.name}: new replication password: {result.stderr.strip()}")
    step(f"mysql {db.name}", "replication password changed to .env's")


def setup_replication(stack: Stack) -> None:
    """Run the shared, idempotent replication script (the one docker-compose runs too)."""
    step("replication", "running mysql/setup-replication.sh")
    subprocess.run(
        ["bash", str(REPLICATION_SCRIPT)],
        check=True,
        env=stack.replication_env(),
    )


def run_script(stack: Stack, name: str, *args: str) -> None:
    """Run mysql/NAME with ARGS in the replication environment; its exit status is ours."""
    step(name, f"running mysql/{name} {' '.join(args)}")
    result = subprocess.run(
        ["bash", str(REPO / "mysql" / name), *args], check=False, env=stack.replication_env()
    )
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def failover(stack: Stack) -> None:
    """The primary is lost for good: fence it if its process still runs, then promote the
    replica that received the most."""
    fence_if_hung(stack, stack.writer)
    run_script(stack, "failover.sh", "failover")


def fence_if_hung(stack: Stack, node: Node, answer_within_s: float = 3.0) -> None:
    """Kill NODE's mariadbd and keep it down when it runs but does not answer (frozen: a paused
    VM, a stopped process, a stalled disk). Left alone, it could wake up writable after another
    node was promoted, with statements in flight from before the freeze that it would then
    commit. `make up` starts it again read-only, as a replica of the new primary. A node that
    answers is left to failover.sh, which keeps a primary that answers."""
    program = f"mysql-{node.name}"
    if supervisor.state_of(stack, program) != "RUNNING":
        return
    try:
        if socket_sql(stack, node, "SELECT 1", timeout=answer_within_s).returncode == 0:
            return
    except subprocess.TimeoutExpired:
        pass
    pid = int((stack.state / "mysql" / node.name / "mysqld.pid").read_text())
    step("fence", f"mysql {node.name} runs but does not answer: killed, kept down (pid {pid})")
    supervisor.crash(stack, program, pid)


def switchover(stack: Stack) -> None:
    """A planned change of primary, the old one alive: it ends as a replica."""
    run_script(stack, "failover.sh", "switchover")


def rebuild_node(stack: Stack) -> None:
    """Rebuild node NODE (host:port) from a copy of the primary: one that setup refused."""
    node = os.environ.get("NODE", "")
    if not node:
        raise SystemExit("NODE=host:port names the node to rebuild (see make repl-status)")
    run_script(stack, "rebuild-node.sh", node)


def migrate(stack: Stack) -> None:
    """Apply Alembic migrations on the primary as the application user."""
    step("migrations", "alembic upgrade head (primary)")
    subprocess.run(
        [str(venv_bin(stack, "alembic")), "upgrade", "head"],
        check=True,
        cwd=REPO / "backend",
        env={**stack.replication_env(), **stack.api_env()},
    )


def replication_status(stack: Stack) -> None:
    """Print replication threads, GTID positions and lag of every replica."""
    subprocess.run(
        ["bash", str(REPO / "mysql" / "repl-status.sh")], check=False, env=stack.replication_env()
    )


def mysql_config(stack: Stack, node: Node, server_id: int, user: str) -> str:
    """An instance option file (mysql/conf/instance.cnf.template, as the image renders it too):
    the shared role config plus this instance's paths and port."""
    data = stack.state / "mysql" / node.name
    return render_template(
        INSTANCE_TEMPLATE.read_text(),
        {
            "CONFIG_DIR": str(MYSQL_CONF),
            "ROLE": "primary" if node.name == "primary" else "replica",
            "DATADIR": str(data / "data"),
            "SOCKET": str(data / "mysqld.sock"),
            "PID_FILE": str(data / "mysqld.pid"),
            "PORT": str(node.port),
            "BIND_ADDRESS": stack.host,
            **semi_sync_values(stack.env),
            "INSTANCE_LINES": "\n".join(
                [
                    f"user = {user}",
                    f"server_id = {server_id}",
                    f"log_error = {stack.state / 'logs' / f'mysql-{node.name}.err'}",
                ]
            ),
        },
    )


def semi_sync_values(env: dict[str, str]) -> dict[str, str]:
    """The semi-synchronous replication settings of an instance (both sides on every node)."""
    if env["MYSQL_SEMI_SYNC"] not in ("on", "off"):
        raise SystemExit(f"MYSQL_SEMI_SYNC must be on or off, not {env['MYSQL_SEMI_SYNC']!r}")
    return {
        "SEMI_SYNC": "ON" if env["MYSQL_SEMI_SYNC"] == "on" else "OFF",
        "SEMI_SYNC_TIMEOUT_MS": str(int(env["MYSQL_SEMI_SYNC_TIMEOUT_MS"])),
    }


def mysql_programs(stack: Stack, account: Account | None) -> list[str]:
    """One program per node: mysql/start-node.sh, then mariadbd on the node's option file."""
    return [
        supervisor_program(
            stack,
            f"mysql-{db.name}",
            f"/bin/bash {REPO / 'mysql' / 'start-node.sh'} {stack.host}:{db.port}"
            f" {'primary' if db.name == 'primary' else 'replica'}"
            f" /usr/sbin/mariadbd --defaults-file={stack.state / 'mysql' / db.name / 'my.cnf'}",
            account,
            priority="10",
            stopwaitsecs="60",
            environment=f'MYSQL_TOPOLOGY_FILE="{stack.topology_file}"',
        )
        for db in stack.databases
    ]
