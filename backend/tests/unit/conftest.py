"""Unit-test fixtures: the real app factory, pointed at addresses where nothing listens.

Engines connect lazily, so every test here that needs no database runs without one; a test
that reached a database by mistake would fail on the connection instead of passing quietly.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.processes.api import create_app

NOWHERE = "127.0.0.1:9"  # the discard port: nothing answers there


def make_app(**overrides: object) -> Flask:
    """The app with nothing listening behind it; OVERRIDES replace settings."""
    return create_app(
        {
            "api_name": "api-test",
            "db_primary": NOWHERE,
            "db_replicas": NOWHERE,
            "mysql_database": "app",
            "mysql_app_user": "app",
            "mysql_app_password": "unit-test",
            "app_secret_key": "unit-test-signing-key",
            "redis_url": f"redis://{NOWHERE}/0",
            "api_max_body_bytes": 4096,
            "replica_poll_interval_s": 0,
            "near_cache_ttl_s": 0,
            "breaker_override_poll_s": 0,
            **overrides,
        }
    )


@pytest.fixture
def app() -> Flask:
    # Input validation is tested on its own here; test_access.py covers the key check.
    return make_app(writes_need_api_key=False)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
