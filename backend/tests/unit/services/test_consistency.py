"""GTID positions and the signed read-your-writes token."""

from __future__ import annotations

import time

import pytest

from app.api.context import issue_token
from app.services.consistency import Token, TokenCodec
from tests.unit.conftest import make_app


def test_a_token_round_trips() -> None:
    codec = TokenCodec("secret")
    token = Token("0-1-42", skip_cache=True)
    assert codec.decode(codec.encode(token)) == token


@pytest.mark.parametrize(
    # The signature, the payload (its first character), or the whole thing.
    "tamper",
    [lambda t: t[:-2] + "xx", lambda t: ("X" if t[0] != "X" else "Y") + t[1:], lambda t: "junk"],
)
def test_a_tampered_token_is_refused(tamper: object) -> None:
    codec = TokenCodec("secret")
    raw = codec.encode(Token("0-1-42"))
    assert codec.decode(tamper(raw)) is None  # type: ignore[operator]


def test_a_token_signed_with_another_key_is_refused() -> None:
    raw = TokenCodec("old-key").encode(Token("0-1-42"))
    assert TokenCodec("new-key").decode(raw) is None


@pytest.mark.parametrize(
    "payload", [[[123, 0], 0], [None, 0], [123, 1], ["0-1-42"], "0-1-42", {"gtid": "0-1-42"}]
)
def test_a_signed_token_with_a_payload_of_another_shape_is_refused(payload: object) -> None:
    codec = TokenCodec("secret")
    # Signed with the right key and salt, as a leaked key or another version of the code could.
    raw = codec._serializer.dumps(payload)
    assert codec.decode(raw) is None


@pytest.mark.parametrize(
    ("app_env", "secure"), [("production", True), ("test", False), ("development", False)]
)
def test_the_consistency_cookie_is_sent_over_https_only_in_production(
    app_env: str, secure: bool
) -> None:
    app = make_app(
        app_env=app_env,
        mysql_app_password="a-real-password",
        app_secret_key="a-long-enough-signing-key",
        redis_password="a-real-redis-password",
    )

    def probe() -> str:
        issue_token(Token("0-1-7"))  # as a committed write does
        return "{}"

    app.add_url_rule("/api/token-probe", "token_probe", probe)
    cookie = app.test_client().get("/api/token-probe").headers["Set-Cookie"]
    assert cookie.startswith("consistency_token=")
    assert ("; Secure" in cookie) is secure


def test_a_token_older_than_its_max_age_is_ignored_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = TokenCodec("secret", max_age_s=300)
    raw = codec.encode(Token("0-1-42"))
    later = time.time() + 301
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert codec.decode(raw) is None
    assert codec.expired(raw)
    assert not codec.expired(raw[:-2] + "xx")  # a damaged one is no expired one


def test_an_expired_header_token_is_ignored_by_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(consistency_cookie_max_age_s=60, writes_need_api_key=False)
    raw = TokenCodec("unit-test-signing-key", 60).encode(Token("0-1-42"))
    later = time.time() + 61
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    response = app.test_client().get("/api/users/1", headers={"X-Consistency-Token": raw})
    assert response.status_code == 503  # not 400: it went on to the data (no database here)
