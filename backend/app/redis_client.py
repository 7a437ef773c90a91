"""The Redis client of the app: short timeouts, so a slow or dead Redis costs little."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from app.config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    """Create the client (it connects lazily) and keep it in app.extensions['redis']."""
    app.extensions["redis"] = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        health_check_interval=0,
    )
