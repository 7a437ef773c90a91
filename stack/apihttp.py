"""A GET to one API replica itself (not through nginx), on its unix socket or its TCP port,
whichever it listens on. Standard library only: `make status` uses it, the tests too."""

from __future__ import annotations

import http.client
import socket

from stack.settings import Node, Stack


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(
    stack: Stack, api: Node, path: str, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    """(status, body) of GET PATH on replica API; OSError when it cannot be reached."""
    socket_path = stack.api_socket(api)
    conn: http.client.HTTPConnection
    if socket_path is not None:
        conn = UnixConnection(str(socket_path), timeout)
    else:
        conn = http.client.HTTPConnection(stack.host, api.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
