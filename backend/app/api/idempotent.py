"""The Idempotency-Key header of a write (POST, PATCH, DELETE): checked, scoped to the client,
fingerprinted. A client that re-sends a write after a timeout gets the first answer, and a
PATCH re-sent after a newer one does not apply its old values again.

What a key then does (the first answer stored with the write, replayed to retries) is
app.services.idempotency's business.
"""

from __future__ import annotations

import hashlib

from flask import g, request

from app.api.problems import IDEMPOTENCY_HEADER, Problem
from app.services.idempotency import Idempotent

KEY_MAX = 128


def idempotent() -> Idempotent | None:
    """This request's key (None without one; a malformed one is a 400), scoped to its client,
    and its fingerprint: method, path and body bytes make two requests the same request."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= KEY_MAX and key.isascii() and key.isprintable()):
        raise Problem(400, f"{IDEMPOTENCY_HEADER} must be 1-{KEY_MAX} printable ASCII characters.")
    # Keys are per client: one client's key can never replay another client's answer.
    client = g.get("client")
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data())
    return Idempotent(f"{client.key_id}:{key}" if client else key, digest.hexdigest())
