"""HTTPS at nginx (NGINX_TLS=on, docs/deploy.md): the same routes over TLS, verified against the
certificate `make up` generated, and the consistency cookie Secure over HTTPS only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from stack.settings import Stack
from tests.integration.conftest import launcher
from tests.integration.helpers import Api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_on(stack: Stack) -> Iterator[str]:
    """The test stack with its HTTPS listener, as `NGINX_TLS=on make up` has it; its URL."""
    launcher("up", {"NGINX_TLS": "on"})
    try:
        yield f"https://{stack.host}:{stack.env['NGINX_TLS_PORT']}"
    finally:
        launcher("up", {"NGINX_TLS": "off"})


def certificate(stack: Stack) -> str:
    """The certificate `make up` generated, which clients verify the listener against."""
    return str(stack.state / "tls" / "cert.pem")


def test_https_serves_the_api_with_a_certificate_clients_can_verify(
    tls_on: str, stack: Stack, api: Api
) -> None:
    user = api.create_user("Tls", "Reader")
    response = requests.get(
        f"{tls_on}/api/users/{user['id']}", verify=certificate(stack), timeout=10
    )
    assert (response.status_code, response.json()) == (200, user)
    assert response.headers["X-Served-By"].startswith(("api-", "edge"))
    names = subprocess.run(
        ["openssl", "x509", "-in", certificate(stack), "-noout", "-ext", "subjectAltName"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "DNS:localhost" in names
    assert "IP Address:127.0.0.1" in names
    # the key is the servers' alone
    assert (stack.state / "tls" / "key.pem").stat().st_mode & 0o077 == 0


def test_the_consistency_cookie_is_secure_over_https_only(
    tls_on: str, stack: Stack, api: Api
) -> None:
    headers = {"X-API-Key": api.api_key or ""}
    body = {"name": "Cookie", "second_name": "Jar"}
    over_https = requests.post(
        f"{tls_on}/api/users", json=body, headers=headers, verify=certificate(stack), timeout=10
    )
    over_http = requests.post(f"{stack.base_url}/api/users", json=body, headers=headers, timeout=10)
    assert (over_https.status_code, over_http.status_code) == (201, 201)
    assert "; Secure" in over_https.headers["Set-Cookie"]
    assert "; Secure" not in over_http.headers["Set-Cookie"]


def test_plain_http_on_the_https_port_is_a_problem_json_400(tls_on: str) -> None:
    plain = tls_on.replace("https://", "http://")
    response = requests.get(f"{plain}/api/users/1", timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 400
