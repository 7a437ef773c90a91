"""Writes with an Idempotency-Key: the first answer is stored with the write, and replayed.

A client that times out cannot know whether its POST created anything; with a key it can simply
send the same request again. The key is claimed in the same transaction as the write it protects
(db/queries/idempotency.py), together with the request's fingerprint, so reusing a key for a
different request is refused (KeyReused), never silently replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.db.queries import idempotency as stored_answers
from app.errors import KeyInProgress, KeyReused
from app.services.consistency import Token
from app.services.units import Call, Units, Write


@dataclass(frozen=True)
class Answer:
    """A write's answer: status, JSON body, the created resource's path, and whether it is a
    replay of an earlier answer."""

    status: int
    body: bytes
    location: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class Idempotent:
    """A request's Idempotency-Key (scoped to its client) and what makes it the same request."""

    key: str
    fingerprint: str


def once(
    units: Units, call: Call, request: Idempotent | None, action: Callable[[Write], Answer]
) -> Answer:
    """ACTION's answer, written once per REQUEST's key (every time, without a key)."""
    if request is None:
        return units.write(call, action)

    def claimed(unit: Write) -> Answer:
        stored_answers.claim(conn=unit.conn, key=request.key, fingerprint=request.fingerprint)
        answer = action(unit)
        stored_answers.record(
            conn=unit.conn,
            key=request.key,
            status=answer.status,
            body=answer.body,
            location=answer.location,
        )
        return answer

    try:
        return units.write(call, claimed)
    except stored_answers.KeyTaken:
        return replay(units, call, request)


def replay(units: Units, call: Call, request: Idempotent) -> Answer:
    """The stored answer for REQUEST's key, if it was given to this same request."""
    stored = units.write_once(  # the primary: the claim committed there
        call, lambda unit: stored_answers.stored(conn=unit.conn, key=request.key)
    )
    if stored is None or stored["status"] == stored_answers.PLACEHOLDER_STATUS:
        raise KeyInProgress(request.key)
    if stored["fingerprint"] != request.fingerprint:
        raise KeyReused(request.key)
    if stored["position"]:
        call.issued = Token(stored["position"])  # covers the original write (see stored())
    return Answer(stored["status"], bytes(stored["body"]), stored["location"], replayed=True)
