"""Renders every config file of a native stack into its state dir: each server's module writes its
own (mysql.py, redis.py, nginx.py, queue.py), this one assembles supervisord.conf from their
programs and the API's, and writes them all."""

from __future__ import annotations

from pathlib import Path

from stack import rolling, stages
from stack.account import Account
from stack.mysql import MYSQL_CONF, REPLICATION_SCRIPT, mysql_config, mysql_programs
from stack.nginx import (
    NGINX_TEMPLATE,
    config_file,
    nginx_program,
    nginx_values,
    purger_program,
)
from stack.programs import (
    api_program,
    app_program,
    root_run,
    run_as,
    supervisor_dir,
    supervisor_env,
    supervisor_program,
)
from stack.queue import NATS_CONF, queue_programs
from stack.redis import REDIS_CONF, redis_config, redis_program
from stack.settings import REPO, Stack
from stack.templates import render_template

LOG_SETTINGS = ("LOG_MAX_BYTES", "LOG_BACKUPS", "LOG_ROTATE_INTERVAL_S")
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
    programs = [*mysql_programs(stack, account), redis_program(stack, account)]
    heartbeat = {**stack.api_env(), "HEARTBEAT_PID_FILE": str(state / "run" / "heartbeat.pid")}
    programs.append(
        app_program(
            stack, "heartbeat", "app.processes.heartbeat", account, heartbeat, priority="15"
        )
    )
    programs += queue_programs(stack, account)
    programs += push_programs(stack, account)
    programs.append(purger_program(stack, account))
    programs += stages.server_program(stack, account)  # stages 1-3 only (make stage N=...)
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
        programs.append(api_program(stack, api.name, account, env))
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
    programs.append(nginx_program(stack, account))
    return head + "\n".join(programs)


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
    write(config_file(stack), render_template(template, nginx_values(stack)))
    for server_id, db in enumerate(stack.databases, start=1):
        write(
            state / "mysql" / db.name / "my.cnf",
            mysql_config(stack, db, server_id, run_as(account)),
        )
    write(state / "redis.conf", redis_config(stack), mode=0o600)  # it holds the password
    write(state / "supervisord.conf", supervisor_config(stack, account), mode=0o600)
