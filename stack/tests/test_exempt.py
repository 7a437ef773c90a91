"""No address is exempt from nginx's per-address limits by default; the load tools exempt the
loopback only while they run, then put the configured value back."""

from __future__ import annotations

import pytest

from stack import exempt
from stack.nginx import nginx_values
from stack.settings import REPO, Stack, read_env_file


def default_stack(**overrides: str) -> Stack:
    return Stack({**read_env_file(REPO / ".env.example"), **overrides})


def test_by_default_no_address_is_exempt() -> None:
    assert nginx_values(default_stack())["NGINX_RATE_LIMIT_EXEMPT"] == "192.0.2.0/24"


def test_the_loopback_is_exempt_only_while_the_block_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    monkeypatch.setattr(
        exempt, "launcher_up", lambda env: applied.append(env["NGINX_RATE_LIMIT_EXEMPT"])
    )
    monkeypatch.setattr(
        exempt, "load_stack", lambda: default_stack(NGINX_RATE_LIMIT_EXEMPT="127.0.0.1/32")
    )
    with exempt.loopback_exempt(default_stack()) as stack:
        assert applied == ["127.0.0.1/32"]
        assert stack.env["NGINX_RATE_LIMIT_EXEMPT"] == "127.0.0.1/32"
    assert applied == ["127.0.0.1/32", "192.0.2.0/24"]


def test_a_stack_that_exempts_the_loopback_already_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exempt, "launcher_up", lambda env: pytest.fail("nothing to apply"))
    with exempt.loopback_exempt(default_stack(NGINX_RATE_LIMIT_EXEMPT="127.0.0.1/32")):
        pass
