"""Settings of a push process, from its environment (.env.example). It needs the broker only:
no database, no Redis, no secret but the broker's password."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import CommaList


class PushSettings(BaseSettings):
    """Everything a push process reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: str = "development"
    log_level: str = "INFO"
    # Shown in X-Served-By (the launcher sets push-1, push-2, ...; compose, the container name).
    push_name: str = Field(default_factory=socket.gethostname)
    nats_servers: CommaList = ("nats://127.0.0.1:4222",)
    nats_user: str = "app"
    nats_password: SecretStr = SecretStr("")
    events_stream: str = "EVENTS"
    # Open streams one process holds; the next is answered 503 (nginx tries another process).
    push_max_streams: int = Field(2000, ge=1)
    # Posts waiting for one client; a client that falls this far behind is dropped (it may
    # reconnect and resume), so a client that does not read never holds the others back.
    push_client_buffer: int = Field(256, ge=1)
    # A comment line on every idle stream this often: proxies and browsers see it alive.
    # Shorter than nginx's NGINX_STREAM_TIMEOUT_S, which is also how long nginx waits for a push
    # process's first byte before it tries another: a frozen process costs a new stream that long.
    push_heartbeat_s: float = Field(1.0, gt=0)
    # A new stream (no Last-Event-ID) starts from the posts made since nginx received it, when
    # that was at most this long ago: one that waited for a frozen process misses nothing.
    push_open_lookback_s: float = Field(30.0, ge=0)
    # The posts a process keeps in memory to resume clients from (older ones: from the stream).
    push_replay_events: int = Field(10000, ge=1)
    # The furthest back a client may resume (a reload past it): no anonymous client replays the
    # whole retained stream (7 days) by sending Last-Event-ID: 0.
    push_max_resume_events: int = Field(100_000, ge=1)
    # The browser's wait before it reconnects (the SSE retry field).
    push_retry_ms: int = Field(1000, ge=0)
    # How often the feed checks that its consumer still exists (and makes a new one if not).
    push_feed_check_s: float = Field(2.0, gt=0)
