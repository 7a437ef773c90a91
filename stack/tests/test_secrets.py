"""The first `make up` writes random secrets into .env; example values are never kept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stack.secrets import SECRETS, ensure_env_file

EXAMPLE = "MYSQL_ADMIN_PASSWORD=dev-root\nREDIS_PASSWORD=dev-redis\nNGINX_PORT=8080\n"


@pytest.fixture(autouse=True)
def no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)


def read(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_a_missing_env_file_gets_every_secret_random_and_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    (tmp_path / "example").write_text(EXAMPLE)
    written = ensure_env_file(tmp_path / ".env", tmp_path / "example")
    values = read(tmp_path / ".env")
    assert written == list(SECRETS)
    assert set(values) == set(SECRETS)  # settings other than secrets stay in .env.example
    assert len(set(values.values())) == len(SECRETS)
    assert all(len(value) == 33 and value.isalnum() for value in values.values())
    assert all(value[0].isalpha() for value in values.values())
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_example_values_are_replaced_and_everything_else_is_kept(tmp_path: Path) -> None:
    (tmp_path / "example").write_text(EXAMPLE)
    chosen = {name: f"chosen-{i}" for i, name in enumerate(SECRETS)}
    chosen["MYSQL_ADMIN_PASSWORD"] = "dev-root"  # the example's value: refused
    body = "".join(f"{k}={v}\n" for k, v in chosen.items()) + "NGINX_PORT=9090\n"
    (tmp_path / ".env").write_text(body)
    assert ensure_env_file(tmp_path / ".env", tmp_path / "example") == ["MYSQL_ADMIN_PASSWORD"]
    values = read(tmp_path / ".env")
    assert values["MYSQL_ADMIN_PASSWORD"] not in ("dev-root", "")
    assert values["NGINX_PORT"] == "9090"
    assert {k: v for k, v in values.items() if k != "MYSQL_ADMIN_PASSWORD"} == {
        **{k: v for k, v in chosen.items() if k != "MYSQL_ADMIN_PASSWORD"},
        "NGINX_PORT": "9090",
    }


def test_a_complete_env_file_is_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "example").write_text(EXAMPLE)
    ensure_env_file(tmp_path / ".env", tmp_path / "example")
    before = (tmp_path / ".env").read_text()
    assert ensure_env_file(tmp_path / ".env", tmp_path / "example") == []
    assert (tmp_path / ".env").read_text() == before


def test_a_broker_password_that_starts_with_a_digit_is_replaced(tmp_path: Path) -> None:
    """nats-server reads "1e5..." from its config's $NATS_RELAY_PASSWORD as a number and fails to
    start (an .env written before secrets began with a letter may hold one)."""
    (tmp_path / "example").write_text(EXAMPLE)
    ensure_env_file(tmp_path / ".env", tmp_path / "example")
    values = read(tmp_path / ".env")
    values["NATS_RELAY_PASSWORD"], values["REDIS_PASSWORD"] = "1e5f00aa", "1e5f00bb"
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    assert ensure_env_file(tmp_path / ".env", tmp_path / "example") == ["NATS_RELAY_PASSWORD"]
    assert read(tmp_path / ".env")["NATS_RELAY_PASSWORD"][0].isalpha()
    assert read(tmp_path / ".env")["REDIS_PASSWORD"] == "1e5f00bb"  # no config reads it so
