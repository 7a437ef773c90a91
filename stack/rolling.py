"""Replaces a running API replica's gunicorn workers with ones that run the current code, the old
workers serving until the new ones are ready (`make up` on a running stack).

gunicorn's own reload (HUP) starts new workers and stops the old ones at once, so until a new
worker has imported the app, requests wait in the socket's backlog: up to 4.7 s measured here
with three readers and nothing else running (docs/operations.md). Instead the master is asked
for one more worker per worker (TTIN), each new worker says when it has loaded the app (a file
named by its pid in WORKERS_READY_DIR, written by gunicorn.conf.py), and then the master is
asked for one fewer worker at a time (TTOU), which stops the oldest first: each old worker
finishes the request it holds and exits. Signals are sent one at a time, each once the previous
one has taken effect, as two of one kind sent together may arrive as one.

HUP stays the way when it is the only one: a master started before this scheme (no ready file
for its workers), or one whose gunicorn.conf.py changed since it read it.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from stack import processes
from stack.settings import REPO, Stack
from stack.waiting import until

CONFIG = REPO / "backend" / "gunicorn.conf.py"
CONFIG_READ = "CONFIG_READ"


def ready_dir(stack: Stack, name: str) -> Path:
    """Where the workers of API replica NAME say they are ready (WORKERS_READY_DIR)."""
    return stack.state / "run" / f"{name}.workers"


def workers_of(master: int) -> set[int]:
    """The live child processes of gunicorn master MASTER."""
    return {pid for pid, (ppid, _, _) in processes.scan().items() if ppid == master}


def ready(ready_dir: Path) -> set[int]:
    """The workers that have loaded the app, by pid."""
    try:
        return {int(path.name) for path in ready_dir.iterdir() if path.name.isdigit()}
    except FileNotFoundError:
        return set()


def config_read_at(ready_dir: Path) -> float | None:
    """When the master last read gunicorn.conf.py (None: it never said)."""
    try:
        return (ready_dir / CONFIG_READ).stat().st_mtime
    except FileNotFoundError:
        return None


def can_roll(master: int, ready_dir: Path) -> bool:
    """Whether MASTER's workers can be replaced one by one: each has said it is ready, and the
    master has read gunicorn.conf.py as it is now."""
    read_at = config_read_at(ready_dir)
    if read_at is None or read_at < CONFIG.stat().st_mtime:
        return False
    current = workers_of(master)
    return bool(current) and current <= ready(ready_dir)


def added(master: int, before: set[int]) -> set[int]:
    """MASTER's workers that were not among BEFORE."""
    return workers_of(master) - before


def fewer(master: int, old: set[int], count: int) -> bool:
    """Whether fewer than COUNT of the workers OLD still run under MASTER."""
    return len(old & workers_of(master)) < count


def roll(name: str, master: int, ready_dir: Path, timeout: float = 120) -> None:
    """Replace gunicorn master MASTER's workers (program NAME), never with fewer ready ones."""
    old = workers_of(master)
    for _ in old:
        before = workers_of(master)
        os.kill(master, signal.SIGTTIN)
        until(partial(added, master, before), timeout, f"{name}: a new worker")
    new = workers_of(master) - old
    until(lambda: new <= ready(ready_dir), timeout, f"{name}: new workers loading the app")
    for _ in old:
        left = len(old & workers_of(master))
        if not left:
            break
        os.kill(master, signal.SIGTTOU)
        until(partial(fewer, master, old, left), timeout, f"{name}: an old worker stopping")


def reload(stack: Stack, masters: dict[str, int], since: float, timeout: float = 120) -> None:
    """Make each API replica's gunicorn (program name -> master pid) run the current code:
    rolled where it can be, side by side, and with HUP where it cannot. A master that read its
    config after SINCE (started by this `make up`) runs it already."""
    todo = {
        name: master
        for name, master in masters.items()
        if (config_read_at(ready_dir(stack, name)) or 0) < since
    }
    hup = {name for name, master in todo.items() if not can_roll(master, ready_dir(stack, name))}
    for name in hup:
        processes.signal_pid(todo[name], signal.SIGHUP)
    with ThreadPoolExecutor(max_workers=max(len(todo), 1)) as pool:
        rolls = [
            pool.submit(roll, name, master, ready_dir(stack, name), timeout)
            for name, master in todo.items()
            if name not in hup
        ]
    for done in rolls:
        done.result()  # the first failure, once every roll has ended
