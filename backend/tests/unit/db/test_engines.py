"""What every database connection is opened with: the timeouts, and TLS as DB_TLS_CA says."""

from __future__ import annotations

import ssl
from typing import Any

import certifi
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, event

from app.config import Settings
from app.db.engines import capped_bounds, make_engine, session_bounds


def settings(**overrides: Any) -> Settings:
    return Settings(
        db_primary="127.0.0.1:1",
        mysql_database="app",
        mysql_app_user="app",
        mysql_app_password=SecretStr("secret"),
        app_secret_key=SecretStr("unit-test-secret"),
        **overrides,
    )


class Opened(Exception):
    """Raised instead of connecting, once the driver's arguments are seen."""


def driver_arguments(engine: Engine) -> dict[str, Any]:
    """The keyword arguments ENGINE hands PyMySQL's connect(), without connecting."""
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def capture(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        seen.update(params)
        raise Opened

    with pytest.raises(Opened):
        engine.connect()
    return seen


def test_without_a_ca_tls_is_off_rather_than_tried_on_every_connection() -> None:
    arguments = driver_arguments(make_engine(settings(), "127.0.0.1:1"))
    assert arguments["ssl_disabled"] is True
    assert "ssl" not in arguments
    assert (arguments["connect_timeout"], arguments["read_timeout"]) == (2, 10)


def test_with_a_ca_tls_is_required_and_verified_with_one_context_per_process() -> None:
    config = settings(db_tls_ca=certifi.where())
    first = driver_arguments(make_engine(config, "127.0.0.1:1"))
    second = driver_arguments(make_engine(config, "127.0.0.2:1", timeout_s=1))
    context = first["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "ssl_disabled" not in first
    assert second["ssl"] is context


def test_a_ca_file_that_does_not_exist_fails_at_once() -> None:
    with pytest.raises(FileNotFoundError):
        make_engine(settings(db_tls_ca="/nonexistent/ca.pem"), "127.0.0.1:1")


def test_an_api_writes_deadline_caps_its_sessions_lock_and_idle_bounds() -> None:
    config = settings(db_lock_wait_timeout_s=5, db_idle_transaction_timeout_s=5)
    assert session_bounds(config) == (
        "SET SESSION innodb_lock_wait_timeout = 5, idle_transaction_timeout = 5"
    )
    # A lock wait leaves time for a second try; a frozen API process's transaction frees its
    # rows before nginx resends its keyed write.
    assert session_bounds(config, 2.5) == (
        "SET SESSION innodb_lock_wait_timeout = 1, idle_transaction_timeout = 3"
    )
    assert capped_bounds(5, 5, 8.0) == (4, 5)
    assert capped_bounds(5, 5, 0.5) == (1, 1)
