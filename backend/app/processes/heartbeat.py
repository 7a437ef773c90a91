"""The heartbeat writer: rewrites one row on the primary a few times a second.

Replicas measure their lag as the age of the copy of this row they hold (sub-second, unlike
Seconds_Behind_Master). Run one per stack: ``python -m app.processes.heartbeat``. It writes to
the member that takes writes, and looks for another when a beat fails (app.db.topology).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import logs
from app.config import Settings
from app.db.primary import FollowedPrimary

BEAT = text("UPDATE heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1")
log = logging.getLogger("heartbeat")


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT. Installed explicitly: as a container's PID 1 the
    process would otherwise ignore SIGTERM (the kernel drops default-action signals there), and
    `docker compose stop` would wait its whole grace period and then SIGKILL it."""
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.set())
    return stopping


def main() -> None:
    """Beat until SIGTERM; a failed beat (primary down) is logged once per outage and retried."""
    stopping = stop_on_signals()
    settings = Settings()  # type: ignore[call-arg]  # every field comes from the environment
    logs.configure(settings.log_level, "heartbeat")
    primary = FollowedPrimary(settings)
    health_file = Path(settings.heartbeat_health_file) if settings.heartbeat_health_file else None
    if settings.heartbeat_pid_file:  # how the native launcher finds this process
        Path(settings.heartbeat_pid_file).write_text(f"{os.getpid()}\n")
    failing = False
    while not stopping.is_set():
        try:
            primary.run(lambda conn: conn.execute(BEAT))
            if health_file:
                health_file.touch()
            if failing:
                log.info("heartbeat restored")
            failing = False
        except DBAPIError as error:
            if not failing:
                log.warning("heartbeat failed", extra={"error": str(error.orig)})
            failing = True
            primary.follow()  # down or fenced: after a failover the row is beaten on the new one
        stopping.wait(settings.heartbeat_interval_s)
    primary.engine.dispose()
    log.info("heartbeat stopped")


if __name__ == "__main__":
    main()
