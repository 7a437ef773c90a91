"""A queue worker (app.queue.worker): ``python -m app.processes.worker``."""

from __future__ import annotations

from app.queue import process
from app.queue.worker import Worker
from app.wiring import make_units


def main() -> None:
    """Run one worker until SIGTERM or SIGINT: the API's units of work, without a near cache."""
    settings = process.start()
    units = make_units(settings, near_cache=False)
    process.run_until_stopped(lambda: Worker(settings, units))


if __name__ == "__main__":
    main()
