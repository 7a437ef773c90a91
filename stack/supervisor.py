"""Starts, updates and stops the stack's own supervisord (found by its pid file, never by name)."""

from __future__ import annotations

import os
import subprocess
import time

from stack.install import venv_bin
from stack.settings import Stack
from stack.ui import step


def supervisord_pid(stack: Stack) -> int | None:
    """The pid of this stack's supervisord if it is alive."""
    pidfile = stack.state / "run" / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def ctl(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run supervisorctl against this stack's supervisord."""
    return subprocess.run(
        [str(venv_bin(stack, "supervisorctl")), "-c", str(stack.state / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        check=check,
    )


def ensure_running(stack: Stack) -> None:
    """Start supervisord, or make a running one pick up the rendered config and start all."""
    if supervisord_pid(stack) is None:
        step("supervisord", "starting all processes")
        subprocess.run(
            [str(venv_bin(stack, "supervisord")), "-c", str(stack.state / "supervisord.conf")],
            check=True,
        )
        wait_for_socket(stack)
        return
    step("supervisord", "running: applying config changes")
    ctl(stack, "reread")
    ctl(stack, "update")
    ctl(stack, "start", "all", check=False)
    # nginx re-reads its rendered config, and gunicorn replaces its workers with ones running
    # the current code, both without dropping a request.
    ctl(stack, "signal", "HUP", "nginx", *(api.name for api in stack.apis), check=False)
    ctl(stack, "restart", "heartbeat", check=False)


def wait_for_socket(stack: Stack, timeout: float = 20) -> None:
    """Poll until supervisorctl can talk to supervisord."""
    deadline = time.monotonic() + timeout
    while ctl(stack, "pid", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit("supervisord did not come up: see its log in the state dir")
        time.sleep(0.1)


def shutdown(stack: Stack, timeout: float = 90) -> None:
    """Stop every process and supervisord itself; data stays on disk."""
    pid = supervisord_pid(stack)
    if pid is None:
        step("down", "not running")
        return
    step("down", "stopping all processes (data kept)")
    ctl(stack, "shutdown", check=False)
    deadline = time.monotonic() + timeout
    while supervisord_pid(stack) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(f"supervisord (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.2)
    step("down", "stopped")
