"""API keys at the door: writes without a valid key are refused before any other work."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from app.errors import InvalidKey
from app.services.api_keys import split_key
from tests.unit.conftest import make_app


@pytest.fixture
def guarded() -> FlaskClient:
    return make_app().test_client()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/users"),
        ("PATCH", "/api/users/1"),
        ("DELETE", "/api/users/1"),
        ("POST", "/api/users/1/posts"),
    ],
)
def test_a_write_without_a_key_is_401_with_a_challenge(
    guarded: FlaskClient, method: str, path: str
) -> None:
    response = guarded.open(path, method=method, json={"name": "A", "second_name": "B"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert "X-API-Key" in response.get_json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("ApiKey")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "secret",
        "zk_",
        "zk_0123456789ab",
        "zk_0123456789abXsecret",
        "zk_NOTHEXNOTHEX_s",
        "zk_0123456789ab_" + "s" * 65,
    ],
)
def test_a_malformed_key_is_401_without_a_lookup(guarded: FlaskClient, key: str) -> None:
    # Nothing listens behind this app: a lookup would be a 503, not a 401.
    response = guarded.get("/api/users/1", headers={"X-API-Key": key})
    assert response.status_code == 401


def test_reads_need_no_key(guarded: FlaskClient) -> None:
    assert guarded.get("/api/users?limit=0").status_code == 422  # validation, not 401


def test_a_wrong_method_is_405_not_401(guarded: FlaskClient) -> None:
    assert guarded.put("/api/users/1", json={}).status_code == 405


def test_a_key_splits_into_its_public_id_and_its_secret() -> None:
    assert split_key("zk_0123456789ab_s3cr-t_") == ("0123456789ab", "s3cr-t_")
    with pytest.raises(InvalidKey):
        split_key("zk_0123456789AB_secret")
