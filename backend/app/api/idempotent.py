"""POSTs with an Idempotency-Key header: the first answer is stored and replayed to retries.

A client that times out cannot know whether its POST created anything; with a key it can simply
send the same request again. The request's fingerprint (method, path and body bytes) is stored
with the key, so reusing a key for a different request is a 422, not a silent replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Response, g, request

from app.api.context import issue_token
from app.api.data import Write, write, writing
from app.api.problems import Problem
from app.db.consistency import Token
from app.services import idempotency

HEADER = "Idempotency-Key"
KEY_MAX = 128
# A write's answer: status, body, extra headers.
Answer = tuple[int, bytes, dict[str, str]]


def request_key() -> str | None:
    """The client's Idempotency-Key, if any; a malformed one is a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= KEY_MAX and key.isascii() and key.isprintable()):
        raise Problem(400, f"{HEADER} must be 1-{KEY_MAX} printable ASCII characters.")
    return key


def fingerprint() -> str:
    """What makes two requests the same request."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data())
    return digest.hexdigest()


def respond(answer: Answer, *, replayed: bool = False) -> Response:
    """A JSON response from an answer."""
    status, body, headers = answer
    response = Response(body, status=status, mimetype="application/json", headers=headers)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(action: Callable[[Write], Answer]) -> Response:
    """Run ACTION in a write unit of work, exactly once per Idempotency-Key of this client."""
    key = request_key()
    if key is None:
        return respond(write(action))
    # Keys are per client: one client's key can never replay another client's answer.
    client = g.get("client")
    key = f"{client.key_id}:{key}" if client else key
    mark = fingerprint()

    def claimed(unit: Write) -> Answer:
        idempotency.claim(conn=unit.conn, key=key, fingerprint=mark)
        answer = action(unit)
        location = answer[2].get("Location")
        idempotency.record(
            conn=unit.conn, key=key, status=answer[0], body=answer[1], location=location
        )
        return answer

    try:
        return respond(write(claimed))
    except idempotency.KeyTaken:
        return replay(key, mark)


def replay(key: str, mark: str) -> Response:
    """The stored answer for KEY, if it was given to this same request."""
    with writing() as unit:  # the primary: the claim committed there
        stored = idempotency.stored(conn=unit.conn, key=key)
    if stored is None or stored["status"] == idempotency.PLACEHOLDER_STATUS:
        raise Problem(
            409,
            f"A request with this {HEADER} is still in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )
    if stored["fingerprint"] != mark:
        raise Problem(422, f"This {HEADER} was used for a different request.")
    headers = {"Location": stored["location"]} if stored["location"] else {}
    if stored["position"]:
        issue_token(Token(stored["position"]))  # replaces the one writing() made from last_gtid
    return respond((stored["status"], bytes(stored["body"]), headers), replayed=True)
