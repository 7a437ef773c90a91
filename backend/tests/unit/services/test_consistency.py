"""GTID positions and the signed read-your-writes token."""

from __future__ import annotations

import pytest

from app.api.context import issue_token
from app.gtid import covers, newest, parse_position
from app.services.consistency import Token, TokenCodec
from tests.unit.conftest import make_app


def test_a_position_is_the_highest_sequence_per_domain() -> None:
    assert parse_position("0-1-12,1-5-3") == {0: 12, 1: 3}
    assert parse_position("") == {}


@pytest.mark.parametrize(
    ("position", "gtid", "expected"),
    [
        ("0-1-12", "0-1-12", True),
        ("0-1-13", "0-1-12", True),
        ("0-1-11", "0-1-12", False),
        ("0-2-20", "0-1-12", True),  # a new primary continues the same domain's sequence
        ("1-1-99", "0-1-12", False),  # another domain says nothing about domain 0
        ("0-1-12,1-1-4", "0-1-12,1-1-5", False),
        ("", "0-1-1", False),
    ],
)
def test_covers(position: str, gtid: str, expected: bool) -> None:
    assert covers(position, gtid) is expected


def test_newest_keeps_the_highest_per_domain() -> None:
    assert newest("0-1-5", None, "0-1-9,1-1-2", "") == "0-1-9,1-1-2"
    assert newest(None, "") is None


def test_a_token_round_trips() -> None:
    codec = TokenCodec("secret")
    token = Token("0-1-42", skip_cache=True)
    assert codec.decode(codec.encode(token)) == token


@pytest.mark.parametrize(
    "tamper", [lambda t: t[:-2] + "xx", lambda t: t.replace("0", "1", 1), lambda t: "junk"]
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
    )

    def probe() -> str:
        issue_token(Token("0-1-7"))  # as a committed write does
        return "{}"

    app.add_url_rule("/api/token-probe", "token_probe", probe)
    cookie = app.test_client().get("/api/token-probe").headers["Set-Cookie"]
    assert cookie.startswith("consistency_token=")
    assert ("; Secure" in cookie) is secure
