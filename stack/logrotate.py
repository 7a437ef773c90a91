"""Keeps the logs that servers write themselves bounded: nginx's access and error logs and each
MariaDB node's error log. (What supervisord captures from its programs, it rotates itself.)

Runs under supervisord as the program `logrotate`: every LOG_ROTATE_INTERVAL_S, a log over
LOG_MAX_BYTES is copied to <name>.1 (older copies shift to .2 ... .LOG_BACKUPS, the oldest is
dropped) and truncated in place. Copy-and-truncate needs no signal: nginx and mariadbd open their
logs for appending, so their next line lands at the new end. A line written between the copy and
the truncation is lost; that is the price of not reopening files under a running server.

    python3 -m stack.logrotate <logs dir>
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

# The logs servers write themselves (supervisord rotates its programs' own output).
PATTERNS = ("nginx-access.log", "nginx-error.log", "mysql-*.err")


def rotate(path: Path, backups: int) -> None:
    """Copy PATH to PATH.1 (shifting older copies up to BACKUPS), then empty it in place."""
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    if backups > 0:
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with path.open("r+b") as log:
        log.truncate(0)


def rotate_all(logs: Path, max_bytes: int, backups: int) -> list[Path]:
    """Rotate every log of PATTERNS in LOGS over MAX_BYTES; the ones rotated."""
    rotated = []
    for pattern in PATTERNS:
        for path in sorted(logs.glob(pattern)):
            if path.stat().st_size > max_bytes:
                rotate(path, backups)
                rotated.append(path)
    return rotated


def main(argv: list[str]) -> None:
    """Rotate forever (as a supervised program)."""
    logs = Path(argv[0])
    max_bytes = int(os.environ.get("LOG_MAX_BYTES", "20000000"))
    backups = int(os.environ.get("LOG_BACKUPS", "3"))
    interval = float(os.environ.get("LOG_ROTATE_INTERVAL_S", "30"))
    while True:
        for path in rotate_all(logs, max_bytes, backups):
            print(f"rotated {path.name}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main(sys.argv[1:])
