"""The native servers run as the unprivileged account the launcher creates (STACK_USER), and
only that account and its group may connect to the API unix sockets."""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from stack import account, processes
from stack.settings import Stack

pytestmark = pytest.mark.integration


def owner(pid: int) -> str:
    """The user name PID runs as (its real uid)."""
    for line in (processes.PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("Uid:"):
            return pwd.getpwuid(int(line.split()[1])).pw_name
    raise AssertionError(f"no Uid line for {pid}")


def expected_user(stack: Stack) -> str:
    """Whom the servers run as here: the account, unless it cannot read this checkout (then
    root, as `make up` says; see docs/security.md)."""
    name = account.wanted(stack)
    if name is None:
        return pwd.getpwuid(os.geteuid()).pw_name
    entry = pwd.getpwnam(name)
    reachable = not account.unreachable(stack, account.Account(name, entry.pw_uid, entry.pw_gid))
    return name if reachable else "root"


def test_every_server_runs_as_the_stack_account_and_supervisord_as_root(stack: Stack) -> None:
    running = processes.stack_processes(stack)
    servers = [p for p in running if p.program != "supervisord"]
    programs = {p.program for p in servers}
    assert {"mysql-primary", "redis", "heartbeat", "api-1", "nginx", "logrotate"} <= programs
    wanted = expected_user(stack)
    assert {p.pid: owner(p.pid) for p in servers} == {p.pid: wanted for p in servers}
    supervisord = processes.supervisord_alive(stack)
    assert supervisord is not None
    assert owner(supervisord) == pwd.getpwuid(os.geteuid()).pw_name


def test_api_sockets_are_0660_to_the_stack_account(stack: Stack) -> None:
    wanted = expected_user(stack)
    sockets = [path for api in stack.apis if (path := stack.api_socket(api))]
    assert sockets, "the test stack reaches its API replicas on unix sockets"
    for path in sockets:
        info = path.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert pwd.getpwuid(info.st_uid).pw_name == wanted
        assert stat.S_IMODE(info.st_mode) == (0o660 if wanted != "root" else 0o777)


def test_supervisord_control_socket_is_out_of_the_accounts_reach(stack: Stack) -> None:
    folder = stack.state / "supervisor"
    info = folder.stat()
    assert info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    conf = (stack.state / "supervisord.conf").stat()
    assert conf.st_uid == os.geteuid()
    assert stat.S_IMODE(conf.st_mode) == 0o600
