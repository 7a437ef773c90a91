"""The unprivileged account the native stack's servers run as (STACK_USER).

The launcher runs as root (it installs packages); the servers do not. supervisord stays root so
that it can start each program as STACK_USER, which the launcher creates as a system account
with no login and no home. That account owns the folders the servers write (datadirs, logs, pid
files, sockets) and nothing else: the rendered supervisord config, which holds every secret,
and supervisord's own socket stay root's alone (stack/programs.py, stack/render.py).

Run by a user other than root, the launcher starts everything as that user: there is nothing to
drop. STACK_USER=root keeps the servers as root (not advised: a flaw in any server is then a
flaw of the machine).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack.settings import REPO, Stack
from stack.ui import step

# The state sub-folders the servers write to, handed to the account on every start.
SERVER_DIRS = ("mysql", "redis", "nginx", "nats", "run", "logs", "metrics", "tls")
# Rendered files a server reads that no other user may (redis.conf holds the password).
SERVER_FILES = ("redis.conf",)


@dataclass(frozen=True)
class Account:
    """Who the servers run as."""

    name: str
    uid: int
    gid: int


def wanted(stack: Stack) -> str | None:
    """The account the servers should run as, or None when they run as the launcher's user."""
    name = stack.env.get("STACK_USER", "").strip()
    if os.geteuid() != 0 or name in ("", "root"):
        return None
    return name


def ensure(stack: Stack) -> Account | None:
    """Create the account if missing and check that it can run the stack's code.

    The account must be able to reach the checkout and execute the venv's interpreter; a
    checkout under a folder only root may enter (root's home, for one) keeps the servers as
    root, and says so.
    """
    name = wanted(stack)
    if name is None:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        step("stack user", f"creating system account {name}")
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
        )
        entry = pwd.getpwnam(name)
    account = Account(name, entry.pw_uid, entry.pw_gid)
    if reason := unreachable(stack, account):
        step("stack user", f"servers run as ROOT: {name} {reason} (see docs/security.md)")
        return None
    return account


def unreachable(stack: Stack, account: Account) -> str:
    """Why ACCOUNT could not run the stack's code here ('' when it can)."""
    probe = (
        "import os, sys, gunicorn, supervisor, app; "
        f"sys.exit(0 if os.access({str(stack.state.parent)!r}, os.X_OK) else 3)"
    )
    result = subprocess.run(
        ["runuser", "-u", account.name, "--", str(stack.venv / "bin" / "python"), "-c", probe],
        cwd=REPO / "backend",
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return ""
    detail = (result.stderr.strip().splitlines() or ["cannot reach the state dir"])[-1]
    return f"cannot run {stack.venv / 'bin' / 'python'} on {REPO}: {detail}"


def hand_over(stack: Stack, account: Account | None) -> None:
    """Give ACCOUNT the folders and files its servers write or read alone (a state dir written
    by an earlier run as root included)."""
    if account is None:
        return
    for sub in SERVER_DIRS:
        top = stack.state / sub
        top.mkdir(parents=True, exist_ok=True)
        # os.walk, not rglob: a running server (nginx's cache manager) removes files and folders
        # while this walks, and os.walk skips a folder that is gone.
        chown(top, account)
        for folder, dirs, files in os.walk(top):
            for name in (*dirs, *files):
                chown(Path(folder, name), account)
    for name in SERVER_FILES:
        if (stack.state / name).exists():
            chown(stack.state / name, account)


def chown(path: Path, account: Account) -> None:
    """Give PATH (never what a symlink points to) to ACCOUNT, unless it already has it, or it
    is gone meanwhile (removed by a running server: nothing left to hand over)."""
    try:
        info = path.lstat()
        if (info.st_uid, info.st_gid) != (account.uid, account.gid):
            os.chown(path, account.uid, account.gid, follow_symlinks=False)
    except FileNotFoundError:
        pass
