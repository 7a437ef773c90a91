"""What a relay and a worker process share: settings, logs, pid file and metrics at start, and a
run until SIGTERM or SIGINT (each asks the process to stop; it finishes what it holds)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app import logs
from app.config import Settings
from app.queue import metrics


class Stoppable(Protocol):
    """A process's main object: it runs until its STOPPING event is set."""

    stopping: asyncio.Event

    async def run(self) -> None: ...


def start() -> Settings:
    """This process's settings, with its logs, pid file and metrics set up."""
    settings = Settings()  # type: ignore[call-arg]  # every field comes from the environment
    logs.configure(settings.log_level, settings.process_name)
    if settings.app_env == "production":
        settings.refuse_example("nats_password")
    if settings.pid_file:  # how the native launcher finds this process
        Path(settings.pid_file).write_text(f"{os.getpid()}\n")
    metrics.serve(settings.metrics_port, settings.metrics_host)
    return settings


def run_until_stopped(make: Callable[[], Stoppable]) -> None:
    """Run what MAKE builds (inside the event loop) until SIGTERM or SIGINT."""

    async def run() -> None:
        process = make()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, process.stopping.set)
        await process.run()

    asyncio.run(run())
