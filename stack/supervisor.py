"""Starts, updates and stops the stack's own supervisord (found by its pid file, never by name),
and with it every process of the stack, orphans included (processes.py)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import threading
import time

from stack import nginx, processes, rolling
from stack.install import venv_bin
from stack.settings import Stack
from stack.ui import step
from stack.waiting import until


def supervisord_pid(stack: Stack) -> int | None:
    """The pid of this stack's supervisord if it is alive."""
    return processes.supervisord_alive(stack)


def stop_legacy_supervisord(stack: Stack, timeout: float = 90) -> None:
    """Stop a supervisord started by a launcher that kept its pid file in the servers' run dir
    (before supervisord got a folder of its own): TERM, on which it stops its programs."""
    legacy = processes.read_pid(stack.state / "run" / "supervisord.pid")
    if legacy is None or processes.scan().get(legacy, (0, 0, ""))[2] != "supervisord":
        return
    step("supervisord", f"stopping the one an older launcher started (pid {legacy})")
    if processes.stop([processes.Process(legacy, 0, legacy, "supervisord", "")], timeout):
        raise SystemExit(f"supervisord (pid {legacy}) did not stop")


def stop_orphans(stack: Stack) -> None:
    """Stop the stack's processes that no running supervisord watches over (by pid)."""
    left = processes.orphans(stack)
    if not left:
        return
    step("orphans", f"stopping {processes.describe(left)}")
    survivors = processes.stop(left)
    if survivors:
        raise SystemExit(f"could not stop {processes.describe(survivors)}")


def ctl(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run supervisorctl against this stack's supervisord."""
    return subprocess.run(
        [str(venv_bin(stack, "supervisorctl")), "-c", str(stack.state / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        check=check,
    )


def ensure_running(stack: Stack) -> None:
    """Start supervisord, or make a running one pick up the rendered config and start all.

    Orphans of an earlier supervisord or of a killed master are stopped first: they hold the
    ports and datadir locks the programs about to start need.
    """
    stop_legacy_supervisord(stack)
    stop_orphans(stack)
    if supervisord_pid(stack) is None:
        step("supervisord", "starting all processes")
        subprocess.run(
            [str(venv_bin(stack, "supervisord")), "-c", str(stack.state / "supervisord.conf")],
            check=True,
        )
        wait_for_socket(stack)
        nginx.mark_loaded(stack)
        return
    step("supervisord", "running: applying config changes")
    since = time.time()
    ctl(stack, "reread")
    ctl(stack, "update")
    ctl(stack, "start", "all", check=False)
    # nginx re-reads its rendered config if it changed (nginx.config_changed: a reload closes
    # idle keepalive connections under clients), and each push process's gunicorn replaces its
    # worker with one running the current code, both without dropping a request (a push
    # process's streams end after PUSH_GRACEFUL_TIMEOUT_S; their clients resume on the new
    # worker or another process).
    reload_nginx = nginx.config_changed(stack)
    to_reload = [*(["nginx"] if reload_nginx else []), *(push.name for push in stack.pushes)]
    ctl(stack, "signal", "HUP", *to_reload, check=False)
    if reload_nginx:
        nginx.mark_loaded(stack)
    # Each API replica's old workers serve until new ones running the current code are ready;
    # meanwhile the other Python programs restart to run it: the heartbeat, the edge purger (its
    # position is durable), and the queue's relays (one gives its lease up as it stops) and
    # workers (an unacked message is redelivered).
    masters = running_pids(stack, [api.name for api in stack.apis])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        rolled = pool.submit(rolling.reload, stack, masters, since)
        restart(stack, ["heartbeat", "edge-purger", *stack.relays, *stack.workers])
        rolled.result()


def apply_programs(stack: Stack) -> None:
    """Start and stop the programs whose config changed (only those), and reload nginx if its
    config changed: what `make stage` needs when only the stage server and nginx differ."""
    ctl(stack, "reread")
    ctl(stack, "update")
    ctl(stack, "start", "all", check=False)
    if nginx.config_changed(stack):
        ctl(stack, "signal", "HUP", "nginx", check=False)
        nginx.mark_loaded(stack)


def running_pids(stack: Stack, names: list[str]) -> dict[str, int]:
    """Program -> its pid, for those of NAMES that are RUNNING."""
    pids = {}
    for line in ctl(stack, "status", *names, check=False).stdout.splitlines():
        fields = line.replace(",", " ").split()
        if len(fields) >= 4 and fields[1] == "RUNNING" and fields[2] == "pid":
            pids[fields[0]] = int(fields[3])
    return pids


def state_of(stack: Stack, name: str) -> str:
    """Program NAME's state as supervisord reports it (RUNNING, STOPPING, STOPPED, ...)."""
    fields = ctl(stack, "status", name, check=False).stdout.split()
    return fields[1] if len(fields) > 1 else ""


def crash(stack: Stack, name: str, pid: int, timeout: float = 30) -> None:
    """kill -9 program NAME's process PID and keep it down, as if its machine were lost (the
    fault `make chaos` and the tests inject).

    Frozen first (the crash happens at this instant), then supervisord is told to stop it, and
    killed only once supervisord is stopping it: killed before, supervisord would restart it at
    once (autorestart) and the stop would then end that new process, a different fault.
    """
    os.kill(pid, signal.SIGSTOP)
    stopping = threading.Thread(target=ctl, args=(stack, "stop", name), kwargs={"check": False})
    stopping.start()
    until(
        lambda: state_of(stack, name) == "STOPPING",
        timeout,
        f"supervisord starting to stop {name}",
        interval=0.1,
    )
    os.kill(pid, signal.SIGKILL)
    stopping.join()
    if (state := state_of(stack, name)) != "STOPPED":
        raise SystemExit(f"{name} is {state or 'unknown'} after the kill, not STOPPED")


def restart(stack: Stack, names: list[str], timeout: float = 60) -> None:
    """Restart the programs NAMES all at once, and wait until each runs again in a new process.

    `supervisorctl restart` stops and starts them one after another, each start waiting its
    startsecs; instead each gets its stop signal (TERM, on which it finishes what it holds) and
    supervisord's autorestart starts it again at once.
    """
    before = running_pids(stack, names)
    if before:
        ctl(stack, "signal", "TERM", *before, check=False)

    def late() -> list[str]:
        now = running_pids(stack, names)
        return [name for name in names if now.get(name, before.get(name)) == before.get(name)]

    until(lambda: not late(), timeout, "running again", 0.1, detail=lambda: ", ".join(late()))


def wait_for_socket(stack: Stack, timeout: float = 20) -> None:
    """Poll until supervisorctl can talk to supervisord."""
    until(
        lambda: ctl(stack, "pid", check=False).returncode == 0,
        timeout,
        "supervisord answering (see its log in the state dir)",
        0.1,
    )


def shutdown(stack: Stack, timeout: float = 90) -> None:
    """Stop every process and supervisord itself, orphans too; data stays on disk."""
    stop_legacy_supervisord(stack)
    pid = supervisord_pid(stack)
    if pid is None:
        if processes.orphans(stack):
            stop_orphans(stack)
            step("down", "stopped")
        else:
            step("down", "not running")
        return
    step("down", "stopping all processes (data kept)")
    ctl(stack, "shutdown", check=False)
    # supervisord removes its pid file before its last moments: wait for the process itself.
    until(
        lambda: not (processes.alive(pid) and "supervisord" in processes.cmdline(pid)),
        timeout,
        f"supervisord (pid {pid}) stopping",
        0.2,
    )
    stop_orphans(stack)  # what a killed master left behind, which supervisord does not know
    step("down", "stopped")


def verify_supervised(stack: Stack, timeout: float = 30) -> None:
    """Every program RUNNING, and every port of the stack held by one of them; else exit."""

    def missing() -> str:
        """What is not yet as it must be ('' when everything is)."""
        lines = ctl(stack, "status", check=False).stdout.splitlines()
        not_running = [line.split()[0] for line in lines if " RUNNING " not in f"{line} "]
        strangers = processes.strangers_on_ports(stack)
        held = ", ".join(f"port {port} by {who}" for port, who in strangers.items())
        parts = (
            "no program listed" if not lines else "",
            f"not running: {', '.join(not_running)}" if not_running else "",
            f"held outside supervisord: {held}" if held else "",
        )
        return "; ".join(part for part in parts if part)

    until(lambda: not missing(), timeout, "every program supervised", 0.3, detail=missing)
