"""One write per answer, for the API's gunicorn (gunicorn.conf.py installs it).

gunicorn (27) sends an answer's headers and its body in two system calls. A worker killed
between the two (kill -9, the OOM killer) leaves nginx holding the headers of an answer whose
body never comes: nginx has already passed the headers on, so it can neither send the read to
another replica nor finish it, and the client's read breaks ("upstream prematurely closed
connection while reading upstream"; `make chaos`'s kill -9 row met it). Here the headers are
held and go out with the first piece of the body, in one call: a worker killed before it sent
nothing, and nginx sends a read to the next replica; killed after it, the whole answer (the
API's are small) is in the socket's buffer and reaches nginx. An answer without a body sends
its headers when it closes.

Only the API's workers use this (the push processes run uvicorn's worker, which streams).
"""

from __future__ import annotations

from typing import Any

from gunicorn.http import wsgi  # type: ignore[import-untyped]


class Held:
    """A socket stand-in that keeps what is sent to it."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


class OneWriteResponse(wsgi.Response):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's response, its headers sent with the first piece of the body."""

    held = b""
    sock: Any  # gunicorn's: set in its __init__

    def captured(self, send: Any, *args: Any) -> bytes:
        """What SEND(*ARGS) would write to the socket, kept instead."""
        socket = self.sock
        kept = self.sock = Held()
        try:
            send(*args)
            return kept.data
        finally:
            self.sock = socket

    def send_headers(self) -> None:
        if not self.headers_sent:
            self.held = self.captured(super().send_headers)

    def _emit_body(self, data: bytes) -> None:
        if not self.held:
            super()._emit_body(data)
            return
        # The API's answers have a length: the body as it is; a chunk takes gunicorn's framing.
        framed = self.captured(super()._emit_body, data) if self.chunked else data
        held, self.held = self.held, b""
        self.sock.sendall(held + framed)

    def sendfile(self, respiter: Any) -> bool:
        """No sendfile (it would send the headers on their own): the file is written instead."""
        return False

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        if self.held:  # no body came (204, HEAD, an empty answer)
            held, self.held = self.held, b""
            self.sock.sendall(held)
        super().close()


def install() -> None:
    """Make gunicorn build every response of this process as a OneWriteResponse (its sync worker
    calls wsgi.create, which looks Response up in its module at each request)."""
    wsgi.Response = OneWriteResponse
