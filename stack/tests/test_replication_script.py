"""mysql/setup-replication.sh refuses bad settings before it connects to anything."""

from __future__ import annotations

import os
import subprocess

import pytest

from stack.settings import REPO, read_env_file

SCRIPT = REPO / "mysql" / "setup-replication.sh"


def run_script(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **read_env_file(REPO / ".env.example"),
        "PATH": os.environ["PATH"],
        "MYSQL_PRIMARY_HOST": "127.0.0.1",
        "MYSQL_PRIMARY_PORT": "9",  # the discard port: nothing may be reached
        "MYSQL_WAIT_SECONDS": "1",
        **overrides,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    "name", ["MYSQL_ROOT_PASSWORD", "MYSQL_APP_PASSWORD", "MYSQL_REPL_PASSWORD"]
)
def test_production_refuses_each_development_password(name: str) -> None:
    real = {
        n: "a-real-password"
        for n in ("MYSQL_ROOT_PASSWORD", "MYSQL_APP_PASSWORD", "MYSQL_REPL_PASSWORD")
    }
    result = run_script(
        APP_ENV="production", **{**real, name: f"dev-{name.split('_')[1].lower()}-password"}
    )
    assert result.returncode != 0
    assert f"{name} is a development password" in result.stderr


def test_development_accepts_the_example_passwords() -> None:
    result = run_script(APP_ENV="development")
    # It goes on to wait for the (absent) primary: past the settings check.
    assert "development password" not in result.stderr
    assert "no answer from 127.0.0.1:9" in result.stderr


def test_production_refuses_the_kubernetes_placeholder() -> None:
    result = run_script(
        APP_ENV="production",
        MYSQL_ROOT_PASSWORD="replace-me",
        MYSQL_APP_PASSWORD="a-real-password",
        MYSQL_REPL_PASSWORD="a-real-password",
    )
    assert "MYSQL_ROOT_PASSWORD is a development password" in result.stderr
