"""An edge purger (app.edge.purger): ``python -m app.processes.edge_purger``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from prometheus_client import start_http_server

from app.edge.config import PurgerSettings
from app.edge.nginx import Edge
from app.edge.purger import Purger
from jsonlog import JsonFormatter


def main() -> None:
    """Run one purger until SIGTERM or SIGINT."""
    settings = PurgerSettings()  # type: ignore[call-arg]  # every field comes from the environment
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(settings.process_name))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    if settings.pid_file:
        Path(settings.pid_file).write_text(f"{os.getpid()}\n")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    edge = Edge(settings.edge_cache_dir, settings.edge_following_file)

    async def run() -> None:
        purger = Purger(settings, edge)
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, purger.stopping.set)
        await purger.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
