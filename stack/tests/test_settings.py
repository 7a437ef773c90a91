"""Typed settings of the API and of the launcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings
from stack.settings import Stack, read_env_file

BASE = {
    "db_primary": "127.0.0.1:3308",
    "mysql_database": "app",
    "mysql_app_user": "app",
    "mysql_app_password": "dev-app-password",
    "app_secret_key": "dev-secret-key-change-me",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("127.0.0.1:3307", ("127.0.0.1:3307",)),
        ("a:1, b:2 ,", ("a:1", "b:2")),
    ],
)
def test_replica_addresses_are_a_comma_separated_list(raw: str, expected: tuple[str, ...]) -> None:
    settings = Settings(**BASE, db_replicas=raw)
    assert settings.db_replicas == expected
    assert settings.replica_names() == [f"replica-{i + 1}" for i in range(len(expected))]


def test_production_refuses_the_development_password() -> None:
    with pytest.raises(ValidationError, match="MYSQL_APP_PASSWORD is a development secret"):
        Settings(**{**BASE, "app_secret_key": "a-real-secret"}, app_env="production")


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(ValidationError, match="APP_SECRET_KEY is a development secret"):
        Settings(**{**BASE, "mysql_app_password": "real"}, app_env="production")


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        (
            {"mysql_app_password": "", "app_secret_key": "a-long-enough-secret"},
            "MYSQL_APP_PASSWORD is empty",
        ),
        ({"mysql_app_password": "real", "app_secret_key": ""}, "APP_SECRET_KEY is empty"),
        ({"mysql_app_password": "real", "app_secret_key": "short"}, "at least 16 characters"),
        (
            {"mysql_app_password": "replace-me", "app_secret_key": "a-long-enough-secret"},
            "MYSQL_APP_PASSWORD is a development secret",
        ),
    ],
    ids=["empty-password", "empty-key", "short-key", "k8s-placeholder"],
)
def test_production_refuses_empty_secrets_and_a_short_signing_key(
    secrets: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{**BASE, **secrets}, app_env="production")


def test_production_accepts_real_secrets() -> None:
    real = {
        "mysql_app_password": "s3cret-from-a-vault",
        "app_secret_key": "another-real-secret",
        "redis_password": "a-real-redis-password",
    }
    settings = Settings(**{**BASE, **real}, app_env="production")
    assert settings.mysql_app_password.get_secret_value() == "s3cret-from-a-vault"


@pytest.mark.parametrize(
    ("redis_password", "message"),
    [("", "REDIS_PASSWORD is empty"), ("dev-redis-password", "REDIS_PASSWORD is a development")],
)
def test_production_refuses_redis_without_a_real_password(
    redis_password: str, message: str
) -> None:
    real = {"mysql_app_password": "real", "app_secret_key": "a-long-enough-secret"}
    with pytest.raises(ValidationError, match=message):
        Settings(**{**BASE, **real}, redis_password=redis_password, app_env="production")


def test_the_password_is_not_shown_in_the_settings_repr() -> None:
    assert "dev-app-password" not in repr(Settings(**BASE))


def test_env_file_parsing_skips_comments_and_strips_quotes(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\n\nA=1\nB = 'two'\nC=\"x=y\"\nnot a setting\n")
    assert read_env_file(env) == {"A": "1", "B": "two", "C": "x=y"}


def stack_env(**overrides: str) -> dict[str, str]:
    env = read_env_file(Path(__file__).resolve().parents[2] / ".env.example")
    return {**env, **overrides}


def test_default_topology_matches_the_documented_ports() -> None:
    stack = Stack(stack_env())
    assert stack.primary.port == 3308
    assert [(r.name, r.port) for r in stack.replicas] == [("replica-1", 3307)]
    assert [(a.name, a.port) for a in stack.apis] == [
        ("api-1", 8001),
        ("api-2", 8002),
        ("api-3", 8003),
    ]
    assert stack.nginx_port == 8080
    assert stack.redis_port == 6380


def test_two_replicas_use_the_second_replica_port() -> None:
    stack = Stack(stack_env(REPLICAS="2"))
    assert [(r.name, r.port) for r in stack.replicas] == [("replica-1", 3307), ("replica-2", 3309)]


def test_more_replicas_than_ports_is_refused() -> None:
    with pytest.raises(SystemExit, match="REPLICAS=3"):
        _ = Stack(stack_env(REPLICAS="3")).replicas


def test_api_processes_get_no_admin_or_replication_secret() -> None:
    env = Stack(stack_env()).api_env()
    assert "MYSQL_ADMIN_PASSWORD" not in env
    assert "MYSQL_REPL_PASSWORD" not in env
    assert env["DB_REPLICAS"] == "127.0.0.1:3307"


def test_a_server_only_setting_never_reaches_the_api_so_changing_it_restarts_no_api() -> None:
    on = Stack(stack_env(MYSQL_SEMI_SYNC="on")).api_env()
    off = Stack(stack_env(MYSQL_SEMI_SYNC="off")).api_env()
    assert "MYSQL_SEMI_SYNC" not in on
    assert on == off


def test_nginx_settings_never_reach_the_api_so_turning_the_edge_cache_on_restarts_no_api() -> None:
    on = Stack(stack_env(EDGE_CACHE="on", NGINX_ANON_RATE="5r/s")).api_env()
    off = Stack(stack_env(EDGE_CACHE="off", NGINX_ANON_RATE="50r/s")).api_env()
    assert "EDGE_CACHE" not in on
    assert on == off


def test_the_signing_key_has_no_default() -> None:
    without_key = {k: v for k, v in BASE.items() if k != "app_secret_key"}
    with pytest.raises(ValidationError, match="app_secret_key"):
        Settings(**without_key)
