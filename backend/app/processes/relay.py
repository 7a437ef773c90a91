"""An outbox relay (app.queue.relay): ``python -m app.processes.relay``."""

from __future__ import annotations

from app.queue import process
from app.queue.relay import Relay


def main() -> None:
    """Run one relay until SIGTERM or SIGINT."""
    settings = process.start()
    process.run_until_stopped(lambda: Relay(settings))


if __name__ == "__main__":
    main()
