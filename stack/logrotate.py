"""Keeps the logs that servers write themselves bounded: nginx's access and error logs and each
MariaDB node's error log. (What supervisord captures from its programs, it rotates itself.)

Runs under supervisord as the program `logrotate`: every LOG_ROTATE_INTERVAL_S, a log over
LOG_MAX_BYTES becomes <name>.1 (older copies shift to .2 ... .LOG_BACKUPS, the oldest is
dropped).

* nginx's logs are renamed, then nginx is told to reopen them (USR1 to its master, whose pid it
  wrote): it writes on into the renamed file until it has opened the new one, so no line and no
  request is lost.
* MariaDB's error logs (a few lines a day) are copied and truncated in place: mariadbd opens its
  log for appending, so its next line lands at the new end; a line written between the copy and
  the truncation would be lost.

    python3 -m stack.logrotate <logs dir>
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

# The logs servers write themselves (supervisord rotates its programs' own output).
REOPENED = ("nginx-access.log", "nginx-error.log")  # renamed, then nginx reopens them
TRUNCATED = ("mysql-*.err",)  # copied, then emptied in place


def shift(path: Path, backups: int) -> None:
    """Make room for PATH.1: PATH.n becomes PATH.n+1, and PATH.BACKUPS is dropped."""
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))


def rotate(path: Path, backups: int, *, reopened: bool = False) -> None:
    """PATH becomes PATH.1: renamed when its writer reopens it (REOPENED), else copied and
    emptied in place. With no backups kept, it is only emptied."""
    shift(path, backups)
    if backups > 0 and reopened:
        path.replace(path.with_name(f"{path.name}.1"))
        return
    if backups > 0:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with path.open("r+b") as log:
        log.truncate(0)


def rotate_all(
    logs: Path, max_bytes: int, backups: int, reopen: Callable[[], None] = lambda: None
) -> list[Path]:
    """Rotate every log in LOGS over MAX_BYTES (REOPEN tells nginx to reopen its logs after
    they were renamed); the ones rotated."""
    rotated = []
    for patterns, reopened in ((REOPENED, True), (TRUNCATED, False)):
        for pattern in patterns:
            for path in sorted(logs.glob(pattern)):
                if path.stat().st_size > max_bytes:
                    rotate(path, backups, reopened=reopened)
                    rotated.append(path)
    if any(path.name in REOPENED for path in rotated):
        reopen()
    return rotated


def nginx_reopener(state: Path) -> Callable[[], None]:
    """A function that sends USR1 (reopen the logs) to this stack's nginx master, if it runs."""

    def reopen() -> None:
        try:
            pid = int((state / "run" / "nginx.pid").read_text().split()[0])
            if (Path("/proc") / str(pid) / "comm").read_text().strip() == "nginx":
                os.kill(pid, signal.SIGUSR1)
        except (OSError, ValueError, IndexError):
            pass  # no nginx: the next one opens fresh files

    return reopen


def main(argv: list[str]) -> None:
    """Rotate forever (as a supervised program)."""
    logs = Path(argv[0])
    max_bytes = int(os.environ.get("LOG_MAX_BYTES", "20000000"))
    backups = int(os.environ.get("LOG_BACKUPS", "3"))
    interval = float(os.environ.get("LOG_ROTATE_INTERVAL_S", "30"))
    reopen = nginx_reopener(logs.parent)
    while True:
        for path in rotate_all(logs, max_bytes, backups, reopen):
            print(f"rotated {path.name}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main(sys.argv[1:])
