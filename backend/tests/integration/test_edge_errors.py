"""Every error nginx answers by itself is problem+json with its own status, never an HTML page.

Sent over a raw socket: the requests here are ones an HTTP client library refuses to send."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from stack import apihttp
from stack.settings import Stack

pytestmark = pytest.mark.integration

LONG = "a" * 5000  # over one header buffer (NGINX_HEADER_BUFFER, 4k)


def raw_request(stack: Stack, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send REQUEST as is; (status, headers, body) of the answer."""
    with socket.create_connection((stack.host, stack.nginx_port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            if b"\r\n\r\n" in received:
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                if len(body) >= int(headers.get("Content-Length", "0")):
                    return int(lines[0].split()[1]), headers, body
    raise AssertionError(f"no whole answer: {received!r}")


def get(path: str, *extra: str, version: str = "HTTP/1.1", method: str = "GET") -> bytes:
    lines = [f"{method} {path} {version}", "Host: localhost", *extra, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/api/users/%00"), 400),
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (get("/_problem"), 404),
        (get("/api/users", method="TRACE"), 405),
        (get(f"/api/users?after={LONG}"), 414),
        (get("/api/users", f"X-Long: {LONG}"), 431),
        (get("/api/users", "Transfer-Encoding: gzip"), 501),
        (get("/api/users", version="HTTP/2.0"), 505),
    ],
    ids=["bad-uri", "bad-line", "internal", "trace", "long-uri", "long-header", "te", "version"],
)
def test_nginx_answers_its_own_errors_in_problem_json(
    stack: Stack, request_bytes: bytes, status: int
) -> None:
    answered, headers, body = raw_request(stack, request_bytes)
    assert answered == status
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Request-ID"]
    problem = json.loads(body)
    assert (problem["type"], problem["status"]) == ("about:blank", status)
    assert problem["title"]
    assert problem["detail"]
    if status == 405:
        assert "GET" in headers["Allow"]


def test_options_through_nginx_lists_the_methods_without_a_body(stack: Stack) -> None:
    answered, headers, body = raw_request(stack, get("/api/users", method="OPTIONS"))
    assert (answered, body) == (204, b"")
    assert set(headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get(f"/api/users?after={'a' * 4000}"), 422),  # just under nginx's request-line bound
        (get("/api/users?limit=1", *(f"X-H{n}: {n}" for n in range(150))), 200),
    ],
    ids=["long-line", "many-headers"],
)
def test_what_nginx_lets_through_the_api_answers_itself(
    stack: Stack, request_bytes: bytes, status: int
) -> None:
    """gunicorn's own bounds (an HTML 414 or 431) lie beyond nginx's: never met through it."""
    answered, headers, _ = raw_request(stack, request_bytes)
    assert answered == status
    assert headers["Content-Type"] in {"application/json", "application/problem+json"}
    assert headers["X-Served-By"].startswith("api")


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_readiness_and_metrics_answer_only_on_the_internal_listener(
    stack: Stack, path: str
) -> None:
    public = requests.get(f"{stack.base_url}{path}", timeout=10)
    assert (public.status_code, public.headers["Content-Type"]) == (404, "application/problem+json")
    internal = requests.get(f"{stack.internal_url}{path}", timeout=10)
    assert internal.status_code == 200
    assert internal.headers["X-Served-By"].startswith("api")


def test_api_replicas_with_a_socket_keep_their_tcp_ports_closed(stack: Stack) -> None:
    """Only nginx (and its limits) stands between a client and the API: no port around it."""
    with_socket = [api for api in stack.apis if stack.api_socket(api) is not None]
    assert with_socket, "the test stack's replicas have their unix sockets"
    for api in with_socket:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((stack.host, api.port), timeout=2).close()
        assert apihttp.get(stack, api, "/healthz")[0] == 200  # the socket answers
