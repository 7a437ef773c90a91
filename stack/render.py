"""Renders every config file of a native stack into its state dir from the shared sources."""

from __future__ import annotations

import getpass
import hashlib
import os
import re
from pathlib import Path

from stack import rolling
from stack.account import Account
from stack.settings import NGINX_SETTINGS, REPO, NatsNode, Node, Stack

PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")
NGINX_TEMPLATE = REPO / "nginx" / "nginx.conf.template"
MYSQL_CONF = REPO / "mysql" / "conf"
LOG_SETTINGS = ("LOG_MAX_BYTES", "LOG_BACKUPS", "LOG_ROTATE_INTERVAL_S")
REDIS_CONF = REPO / "redis" / "redis.conf"
REPLICATION_SCRIPT = REPO / "mysql" / "setup-replication.sh"
NATS_CONF = REPO / "nats" / "nats-server.conf"
# Settings every broker node reads as they are (.env.example).
NATS_SETTINGS = (
    "NATS_CLUSTER_NAME",
    "NATS_MAX_FILE_STORE",
    "NATS_RELAY_USER",
    "NATS_RELAY_PASSWORD",
    "NATS_WORKER_USER",
    "NATS_WORKER_PASSWORD",
    "NATS_READER_USER",
    "NATS_READER_PASSWORD",
    "NATS_ADMIN_USER",
    "NATS_ADMIN_PASSWORD",
    "NATS_ROUTE_USER",
    "NATS_ROUTE_PASSWORD",
    "NATS_SYSTEM_USER",
    "NATS_SYSTEM_PASSWORD",
)
# The files every way to run shares (docker-compose and k8s/ use these very files; tests check).
SHARED_SOURCES = (
    NGINX_TEMPLATE,
    MYSQL_CONF / "common.cnf",
    MYSQL_CONF / "primary.cnf",
    MYSQL_CONF / "replica.cnf",
    REDIS_CONF,
    REPLICATION_SCRIPT,
    NATS_CONF,
)


def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ${NAME} placeholders; an unknown name is an error, never a silent blank."""
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise KeyError(f"template placeholders without a value: {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


# The live page and anything else nginx serves from the repo by itself.
NGINX_WEB_DIR = REPO / "nginx" / "web"


def upstream_address(stack: Stack, api: Node) -> str:
    """How nginx reaches API: its unix socket where there is one (cheaper than loopback TCP)."""
    socket = stack.api_socket(api)
    return f"unix:{socket}" if socket else f"{stack.host}:{api.port}"


def nginx_values(stack: Stack) -> dict[str, str]:
    """Values for nginx/nginx.conf.template on the native stack."""
    if stack.env["EDGE_CACHE"] not in ("on", "off"):
        raise SystemExit(f"EDGE_CACHE must be on or off, not {stack.env['EDGE_CACHE']!r}")
    if not stack.env["EDGE_CACHE_TTL_S"].isdigit() or int(stack.env["EDGE_CACHE_TTL_S"]) < 1:
        raise SystemExit(
            f"EDGE_CACHE_TTL_S must be whole seconds >= 1: {stack.env['EDGE_CACHE_TTL_S']!r}"
        )
    servers = "\n".join(
        f"        server {upstream_address(stack, api)} max_fails=1 fail_timeout=2s;"
        for api in stack.apis
    )
    return {
        "NGINX_WORKER_PROCESSES": stack.env["NGINX_WORKER_PROCESSES"],
        "NGINX_PID_FILE": str(stack.state / "run" / "nginx.pid"),
        "NGINX_ERROR_LOG": str(stack.state / "logs" / "nginx-error.log"),
        "NGINX_ACCESS_LOG": str(stack.state / "logs" / "nginx-access.log"),
        "NGINX_TEMP_DIR": str(stack.state / "nginx"),
        "NGINX_MAX_BODY_SIZE": stack.env["NGINX_MAX_BODY_SIZE"],
        "NGINX_HEADER_BUFFERS": stack.env["NGINX_HEADER_BUFFERS"],
        "NGINX_HEADER_BUFFER": stack.env["NGINX_HEADER_BUFFER"],
        **{name: stack.env[name] for name in NGINX_SETTINGS},
        "NGINX_UPSTREAM_SERVERS": servers,
        "NGINX_PUSH_UPSTREAM_SERVERS": "\n".join(
            f"        server {stack.host}:{push.port} max_fails=1 fail_timeout=2s;"
            for push in stack.pushes
        ),
        "NGINX_WEB_DIR": str(NGINX_WEB_DIR),
        "NGINX_LISTEN": f"{stack.host}:{stack.nginx_port}",
        "NGINX_INTERNAL_LISTEN": f"127.0.0.1:{stack.nginx_internal_port}",
        "NGINX_INTERNAL_PORT": str(stack.nginx_internal_port),
        "EDGE_FOLLOWING_FILE": str(edge_following_file(stack)),
    }


def edge_following_file(stack: Stack) -> Path:
    """The purger's switch (app/edge/nginx.py), beside the copies: where nginx's workers can
    reach, whatever account they run as. nginx serves copies while <it>-<this second> exists."""
    return stack.state / "nginx" / "edge-following"


def edge_serving(stack: Stack) -> bool:
    """Whether the edge purger holds a lease on the switch (it follows the event stream)."""
    switch = edge_following_file(stack)
    return any(switch.parent.glob(switch.name + "-*"))


def purger_program(stack: Stack, account: Account | None) -> str:
    """The edge purger of the one nginx (docs/caching.md): the broker and nginx's cache only."""
    names = ("APP_ENV", "LOG_LEVEL", "EVENTS_STREAM", "CONSUMER_NAME")
    env = {
        **{name: stack.env[name] for name in names},
        **stack.broker_login("READER"),
        **{k: v for k, v in stack.env.items() if k.startswith("EDGE_PURGE")},
        "EDGE_CACHE_TTL_S": stack.env["EDGE_CACHE_TTL_S"],
        "EDGE_LEASE_S": stack.env["EDGE_LEASE_S"],
        "EDGE_ID": stack.env["EDGE_ID"],
        "NATS_SERVERS": stack.nats_servers,
        "PROCESS_NAME": "edge-purger",
        "EDGE_CACHE_DIR": str(stack.state / "nginx" / "edge"),
        "EDGE_FOLLOWING_FILE": str(edge_following_file(stack)),
        "METRICS_PORT": stack.env["EDGE_PURGER_METRICS_PORT"],
        "PID_FILE": str(stack.state / "run" / "edge-purger.pid"),
    }
    return supervisor_program(
        stack,
        "edge-purger",
        f"{stack.venv / 'bin' / 'python'} -m app.processes.edge_purger",
        account,
        directory=str(REPO / "backend"),
        environment=supervisor_env(env),
        priority="25",
        stopwaitsecs="10",
    )


def run_as(account: Account | None) -> str:
    """The name of the user the servers run as (the launcher's own without an account)."""
    return account.name if account else getpass.getuser()


def root_run(account: Account | None) -> bool:
    """Do the servers run as root (no account while the launcher is root)?"""
    return account is None and os.geteuid() == 0


def mysql_config(stack: Stack, node: Node, server_id: int, user: str) -> str:
    """An instance option file: the shared role config plus this instance's paths and port."""
    role = "primary" if node.name == "primary" else "replica"
    data = stack.state / "mysql" / node.name
    return "\n".join(
        [
            f"!include {MYSQL_CONF / 'common.cnf'}",
            f"!include {MYSQL_CONF / f'{role}.cnf'}",
            "[mariadbd]",
            f"user = {user}",
            f"server_id = {server_id}",
            f"datadir = {data / 'data'}",
            f"socket = {data / 'mysqld.sock'}",
            f"pid_file = {data / 'mysqld.pid'}",
            f"log_error = {stack.state / 'logs' / f'mysql-{node.name}.err'}",
            f"port = {node.port}",
            f"bind_address = {stack.host}",
            *semi_sync_lines(stack.env),
            "",
        ]
    )


def semi_sync_lines(env: dict[str, str]) -> list[str]:
    """The semi-synchronous replication settings of an instance (both sides on every node)."""
    if env["MYSQL_SEMI_SYNC"] not in ("on", "off"):
        raise SystemExit(f"MYSQL_SEMI_SYNC must be on or off, not {env['MYSQL_SEMI_SYNC']!r}")
    state = "ON" if env["MYSQL_SEMI_SYNC"] == "on" else "OFF"
    return [
        f"rpl_semi_sync_master_enabled = {state}",
        f"rpl_semi_sync_slave_enabled = {state}",
        f"rpl_semi_sync_master_timeout = {int(env['MYSQL_SEMI_SYNC_TIMEOUT_MS'])}",
    ]


def digest(text: str) -> str:
    """A short fingerprint of TEXT (no secret can be read back from it)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def redis_config(stack: Stack) -> str:
    """The shared redis/redis.conf, plus this instance's address and dir."""
    return "\n".join(
        [
            f"include {REDIS_CONF}",
            f"bind {stack.host}",
            f"port {stack.redis_port}",
            f"dir {stack.state / 'redis'}",
            f"pidfile {stack.state / 'run' / 'redis.pid'}",
            f"requirepass {stack.env['REDIS_PASSWORD']}",
            "",
        ]
    )


def supervisor_program(
    stack: Stack, name: str, command: str, account: Account | None = None, **extra: str
) -> str:
    """One [program:x] section, run as ACCOUNT if any; output goes to the stack's log dir."""
    lines = [
        f"[program:{name}]",
        f"command={command}",
        *([f"user={account.name}"] if account else []),
        "autostart=true",
        "autorestart=true",
        "startsecs=1",
        "stopsignal=TERM",
        "stopasgroup=true",
        "killasgroup=true",
        f"stdout_logfile={stack.state / 'logs' / f'{name}.log'}",
        f"stdout_logfile_maxbytes={stack.env['LOG_MAX_BYTES']}",
        f"stdout_logfile_backups={stack.env['LOG_BACKUPS']}",
        "redirect_stderr=true",
    ]
    settings = {line.split("=", 1)[0]: line for line in lines[1:]}
    settings |= {key: f"{key}={value}" for key, value in extra.items()}
    return "\n".join([lines[0], *settings.values()]) + "\n"


def supervisor_env(values: dict[str, str]) -> str:
    """supervisord's environment= syntax: quoted, with % doubled."""

    def quote(value: str) -> str:
        return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'

    return ",".join(f"{key}={quote(value)}" for key, value in sorted(values.items()))


def supervisor_dir(stack: Stack) -> Path:
    """supervisord's socket and pid file: root's alone, out of the servers' run dir (whoever
    could replace the socket there could answer supervisorctl)."""
    return stack.state / "supervisor"


def supervisor_config(stack: Stack, account: Account | None = None) -> str:
    """supervisord.conf: every process of the stack, as ACCOUNT, databases first, nginx last."""
    state, venv, own = stack.state, stack.venv, supervisor_dir(stack)
    head = f"""[unix_http_server]
file={own / "supervisor.sock"}
chmod=0700

[supervisord]
pidfile={own / "supervisord.pid"}
logfile={state / "logs" / "supervisord.log"}
logfile_maxbytes={stack.env["LOG_MAX_BYTES"]}
logfile_backups={stack.env["LOG_BACKUPS"]}
childlogdir={state / "logs"}
user=root

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{own / "supervisor.sock"}

"""
    programs = [
        supervisor_program(
            stack,
            f"mysql-{db.name}",
            f"/bin/bash {REPO / 'mysql' / 'start-node.sh'} {stack.host}:{db.port}"
            f" {'primary' if db.name == 'primary' else 'replica'}"
            f" /usr/sbin/mariadbd --defaults-file={state / 'mysql' / db.name / 'my.cnf'}",
            account,
            priority="10",
            stopwaitsecs="60",
            environment=f'MYSQL_TOPOLOGY_FILE="{stack.topology_file}"',
        )
        for db in stack.databases
    ]
    programs.append(
        supervisor_program(
            stack,
            "redis",
            f"/usr/bin/redis-server {state / 'redis.conf'}",
            account,
            priority="10",
            # The config's digest in Redis's environment: a changed config (a new password)
            # changes the program, and supervisord restarts Redis with it on `make up`.
            environment=supervisor_env({"REDIS_CONFIG_DIGEST": digest(redis_config(stack))}),
        )
    )
    programs.append(
        supervisor_program(
            stack,
            "heartbeat",
            f"{venv / 'bin' / 'python'} -m app.processes.heartbeat",
            account,
            directory=str(REPO / "backend"),
            environment=supervisor_env(
                {**stack.api_env(), "HEARTBEAT_PID_FILE": str(state / "run" / "heartbeat.pid")}
            ),
            priority="15",
        )
    )
    programs += queue_programs(stack, account)
    programs += push_programs(stack, account)
    programs.append(purger_program(stack, account))
    for api in stack.apis:
        env = {
            **stack.api_env(),
            "API_NAME": api.name,
            "API_BIND": f"{stack.host}:{api.port}" if stack.api_tcp(api) else "",
            "API_UNIX_SOCKET": str(stack.api_socket(api) or ""),
            "PROMETHEUS_MULTIPROC_DIR": str(state / "metrics" / api.name),
            "API_PID_FILE": str(state / "run" / f"{api.name}.pid"),
            "WORKERS_READY_DIR": str(rolling.ready_dir(stack, api.name)),
            # nginx's workers run as STACK_USER, or as nobody when the servers run as root.
            "API_SOCKET_UMASK": stack.env["API_SOCKET_UMASK"] if not root_run(account) else "0",
        }
        programs.append(
            supervisor_program(
                stack,
                api.name,
                f"{venv / 'bin' / 'gunicorn'} -c gunicorn.conf.py 'app.processes.api:create_app()'",
                account,
                directory=str(REPO / "backend"),
                environment=supervisor_env(env),
                priority="20",
                stopwaitsecs=stack.env["GUNICORN_GRACEFUL_TIMEOUT"],
            )
        )
    log_settings = {name: stack.env[name] for name in LOG_SETTINGS}
    programs.append(
        supervisor_program(
            stack,
            "logrotate",
            # The launcher's own stdlib code, as the account that owns the logs and nginx.
            f"{venv / 'bin' / 'python'} -m stack.logrotate {state / 'logs'}",
            account,
            directory=str(REPO),
            environment=supervisor_env(log_settings),
            priority="5",
        )
    )
    programs.append(
        supervisor_program(
            stack,
            "nginx",
            f"/usr/sbin/nginx -e {state / 'logs' / 'nginx-error.log'} "
            f"-c {state / 'nginx.conf'} -g 'daemon off;'",
            account,
            priority="30",
            # QUIT is nginx's graceful stop: requests in flight get their answers (TERM drops
            # them, and a committed write would be answered with a reset).
            stopsignal="QUIT",
            stopwaitsecs="20",
            # A master that cannot bind retries for ~2.5 s, then exits: longer than this, so
            # a port held by a stranger ends in FATAL instead of endless restarts.
            startsecs="3",
        )
    )
    return head + "\n".join(programs)


def nats_env(stack: Stack, node: NatsNode) -> dict[str, str]:
    """The environment nats/nats-server.conf reads for NODE (NATS resolves $NAME from it)."""
    login = f"{stack.env['NATS_ROUTE_USER']}:{stack.env['NATS_ROUTE_PASSWORD']}"
    routes = ", ".join(
        f"nats-route://{login}@{stack.host}:{n.cluster_port}" for n in stack.nats_nodes
    )
    return {
        "NATS_SERVER_NAME": node.name,
        "NATS_HOST": stack.host,
        "NATS_CLIENT_PORT": str(node.client_port),
        "NATS_CLUSTER_PORT": str(node.cluster_port),
        "NATS_MONITOR_ADDRESS": "0",  # port 0: no monitor (nats/nats-server.conf)
        "NATS_PID_FILE": str(stack.state / "run" / f"{node.name}.pid"),
        "NATS_STORE_DIR": str(stack.state / "nats" / node.name),
        "NATS_ROUTES": f"[{routes}]",
        **{name: stack.env[name] for name in NATS_SETTINGS},
    }


def queue_programs(stack: Stack, account: Account | None) -> list[str]:
    """The broker's nodes, the relays and the workers (docs/messaging.md)."""
    state, venv = stack.state, stack.venv
    programs = [
        supervisor_program(
            stack,
            node.name,
            # The pid file on the command line too: it names the state dir, so `make up` finds
            # a node whose supervisord was killed (processes.py).
            f"/usr/sbin/nats-server -c {NATS_CONF} --pid {state / 'run' / f'{node.name}.pid'}",
            account,
            environment=supervisor_env(nats_env(stack, node)),
            priority="10",
            # INT and TERM both shut nats-server down cleanly; after TERM it exits with status 1.
            stopsignal="INT",
            stopwaitsecs="30",
        )
        for node in stack.nats_nodes
    ]
    ports = stack.queue_metrics_ports()
    for name in [*stack.relays, *stack.workers]:
        relay = name.startswith("relay-")
        module = "app.processes.relay" if relay else "app.processes.worker"
        env = {
            **stack.api_env(),
            **stack.broker_login("RELAY" if relay else "WORKER"),
            "PROCESS_NAME": name,
            "METRICS_PORT": str(ports[name]),
            "PID_FILE": str(state / "run" / f"{name}.pid"),
        }
        programs.append(
            supervisor_program(
                stack,
                name,
                f"{venv / 'bin' / 'python'} -m {module}",
                account,
                directory=str(REPO / "backend"),
                environment=supervisor_env(env),
                priority="18",
                stopwaitsecs="15",
            )
        )
    return programs


def push_programs(stack: Stack, account: Account | None) -> list[str]:
    """push-1..N: the API's gunicorn config with one asyncio worker each (docs/push.md)."""
    programs = []
    for push in stack.pushes:
        env = {
            **stack.push_env(),
            "PUSH_NAME": push.name,
            "API_NAME": push.name,
            "API_BIND": f"{stack.host}:{push.port}",
            "API_PID_FILE": str(stack.state / "run" / f"{push.name}.pid"),
            "GUNICORN_WORKERS": "1",
            "GUNICORN_WORKER_CLASS": "uvicorn_worker.UvicornWorker",
            "GUNICORN_GRACEFUL_TIMEOUT": stack.env["PUSH_GRACEFUL_TIMEOUT_S"],
            "SOCKET_SNDBUF_BYTES": stack.env["PUSH_SEND_BUFFER_BYTES"],
        }
        programs.append(
            supervisor_program(
                stack,
                push.name,
                f"{stack.venv / 'bin' / 'gunicorn'} -c gunicorn.conf.py"
                " 'app.processes.push:create_app()'",
                account,
                directory=str(REPO / "backend"),
                environment=supervisor_env(env),
                priority="20",
                stopwaitsecs=str(int(stack.env["PUSH_GRACEFUL_TIMEOUT_S"]) + 5),
            )
        )
    return programs


def write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a rendered file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def render_all(stack: Stack, account: Account | None = None) -> None:
    """Write every rendered config of the stack into its state dir, for servers run as
    ACCOUNT (stack/account.py)."""
    state = stack.state
    for sub in ("logs", "run", "redis", "nginx", *(f"nats/{n.name}" for n in stack.nats_nodes)):
        (state / sub).mkdir(parents=True, exist_ok=True)
    supervisor_dir(stack).mkdir(mode=0o700, exist_ok=True)
    supervisor_dir(stack).chmod(0o700)
    template = NGINX_TEMPLATE.read_text()
    write(state / "nginx.conf", render_template(template, nginx_values(stack)))
    for server_id, db in enumerate(stack.databases, start=1):
        write(
            state / "mysql" / db.name / "my.cnf",
            mysql_config(stack, db, server_id, run_as(account)),
        )
    write(state / "redis.conf", redis_config(stack), mode=0o600)  # it holds the password
    write(state / "supervisord.conf", supervisor_config(stack, account), mode=0o600)
