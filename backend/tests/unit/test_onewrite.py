"""One write per answer (backend/onewrite.py): gunicorn's own response, its headers sent with
the first piece of the body, so that a worker killed mid-answer never leaves nginx headers
without a body."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]

from onewrite import OneWriteResponse


class Socket:
    """Records each call that puts bytes on the wire."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def answer(
    status: str, headers: list[tuple[str, str]], body: list[bytes], method: str = "GET"
) -> list[bytes]:
    """What a OneWriteResponse writes for one answer, call by call (as gunicorn's sync worker
    drives it: start_response, a write per piece of the body, close)."""
    sock = Socket()
    request = SimpleNamespace(method=method, version=(1, 1), should_close=lambda: False)
    response = OneWriteResponse(request, sock, Config())
    response.start_response(status, headers)
    for piece in body:
        response.write(piece)
    response.close()
    return sock.writes


def test_an_answer_with_a_length_is_one_write_headers_and_body() -> None:
    writes = answer("200 OK", [("Content-Length", "11")], [b'{"id": 7}\r\n'])
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 11" in head
    assert body == b'{"id": 7}\r\n'


def test_a_chunked_answer_sends_its_headers_with_the_first_chunk_then_the_rest() -> None:
    writes = answer("200 OK", [], [b"first", b"second"])
    assert len(writes) == 3  # headers + first chunk, the second chunk, the last (empty) chunk
    assert writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert b"Transfer-Encoding: chunked" in writes[0]
    assert writes[1:] == [b"6\r\nsecond\r\n", b"0\r\n\r\n"]


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [("204 No Content", "DELETE", []), ("200 OK", "HEAD", [b"dropped"]), ("200 OK", "GET", [])],
)
def test_an_answer_without_a_body_sends_its_headers_when_it_closes(
    status: str, method: str, body: list[bytes]
) -> None:
    writes = answer(status, [("Content-Length", "0")], body, method)
    assert len(writes) == 1
    assert writes[0].startswith(f"HTTP/1.1 {status}\r\n".encode())
    assert writes[0].endswith(b"\r\n\r\n")
