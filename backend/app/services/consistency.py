"""Read-your-writes, decided here: what a read must see, whether it may use the cache, and the
token a write hands its client.

After a write commits, its client gets a token: the write's GTID and whether the cache may be
trusted for its next reads (not when Redis missed the write's invalidation). A read that brings
the token back is served only by a node that has applied that GTID (the router enforces the floor
it is given), and skips every process's near cache. A read that meets a cache tombstone must see
the tombstone's GTID too. The floor is always an explicit argument of a read, never ambient state.

The token is opaque and tamper-evident: the GTID and a flag, signed with HMAC (itsdangerous) under
the app's secret key, with the time it was made. A client can hand it back but cannot forge a
smaller (staler) position. It expires after CONSISTENCY_COOKIE_MAX_AGE_S: by then every replica
in rotation has long applied its write, so an expired token asks for nothing and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.gtid import newest, parse_position


@dataclass(frozen=True)
class Token:
    """What a write tells later reads: its GTID, and whether the cache may be trusted for them."""

    gtid: str
    skip_cache: bool = False


def read_floor(token: Token | None, tombstone: str | None = None) -> str | None:
    """The GTID a read must see: the client's last write's, and the write behind a tombstone."""
    if token is None:
        return tombstone
    return newest(token.gtid, tombstone) if tombstone else token.gtid


def may_use_cache(token: Token | None) -> bool:
    """May this client's read be answered from the cache (Redis)?"""
    return token is None or not token.skip_cache


def near_cache_allowed(token: Token | None) -> bool:
    """May it be answered from this process's near cache? Not when it must see a write: a near
    cache hears of writes a moment later than Redis."""
    return token is None


def after_write(gtid: str, invalidated: bool) -> Token | None:
    """The token for a write committed at GTID; INVALIDATED False when Redis missed its
    invalidation, so this client's next reads skip the cache. None when nothing was written."""
    return Token(gtid, skip_cache=not invalidated) if gtid else None


class TokenCodec:
    """Signs and verifies consistency tokens."""

    def __init__(self, secret_key: str, max_age_s: int = 300) -> None:
        """SECRET_KEY is the HMAC key; every API replica must share it. A token older than
        MAX_AGE_S is no longer honoured."""
        self._serializer = URLSafeTimedSerializer(secret_key, salt="consistency-token")
        self.max_age_s = max_age_s

    def encode(self, token: Token) -> str:
        """The opaque string sent to the client."""
        return self._serializer.dumps([token.gtid, int(token.skip_cache)])

    def decode(self, raw: str) -> Token | None:
        """The token inside RAW, or None when RAW is malformed or its signature is wrong."""
        try:
            gtid, skip_cache = self._serializer.loads(raw, max_age=self.max_age_s)
            if not isinstance(gtid, str):  # signed, but not by this code: refuse, never crash
                return None
            parse_position(gtid)
        except (BadSignature, ValueError, TypeError):
            return None
        return Token(str(gtid), bool(skip_cache))

    def expired(self, raw: str) -> bool:
        """Is RAW a genuine token that is merely too old (not a forged or damaged one)?"""
        try:
            self._serializer.loads(raw, max_age=self.max_age_s)
        except SignatureExpired:
            return True
        except BadSignature:
            return False
        return False
