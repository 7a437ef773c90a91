"""supervisord's side of every server: the one shape of a [program:x] section, its environment
syntax, where supervisord's own files live, and the account the servers run as. Each server's
module (mysql.py, redis.py, nginx.py, queue.py, api.py) writes its programs with these."""

from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path

from stack.account import Account
from stack.settings import REPO, Stack


def run_as(account: Account | None) -> str:
    """The name of the user the servers run as (the launcher's own without an account)."""
    return account.name if account else getpass.getuser()


def root_run(account: Account | None) -> bool:
    """Do the servers run as root (no account while the launcher is root)?"""
    return account is None and os.geteuid() == 0


def digest(text: str) -> str:
    """A short fingerprint of TEXT (no secret can be read back from it)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def app_program(
    stack: Stack,
    name: str,
    module: str,
    account: Account | None,
    env: dict[str, str],
    **extra: str,
) -> str:
    """[program:NAME]: `python -m MODULE` of the app (app/processes), from the venv, in backend/,
    with ENV as its whole environment."""
    return supervisor_program(
        stack,
        name,
        f"{stack.venv / 'bin' / 'python'} -m {module}",
        account,
        directory=str(REPO / "backend"),
        environment=supervisor_env(env),
        **extra,
    )


def api_program(stack: Stack, name: str, account: Account | None, env: dict[str, str]) -> str:
    """[program:NAME]: the API under gunicorn (backend/gunicorn.conf.py, the app factory of
    app/processes/api.py), with ENV as its whole environment; stopped within its graceful time."""
    return supervisor_program(
        stack,
        name,
        f"{stack.venv / 'bin' / 'gunicorn'} -c gunicorn.conf.py 'app.processes.api:create_app()'",
        account,
        directory=str(REPO / "backend"),
        environment=supervisor_env(env),
        priority="20",
        stopwaitsecs=stack.env["GUNICORN_GRACEFUL_TIMEOUT"],
    )
