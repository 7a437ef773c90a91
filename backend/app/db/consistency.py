"""Read-your-writes: GTID positions, and the signed token carrying a write's GTID to later reads.

A MariaDB GTID is ``domain-server-sequence``; a position is a comma-separated list of GTIDs, one
per replication domain. A node *covers* a GTID when its position holds a sequence number at least
as high in that GTID's domain (sequence numbers grow monotonically within a domain).

The token is opaque and tamper-evident: the GTID and a flag, signed with HMAC (itsdangerous) under
the app's secret key. A client can hand it back but cannot forge a smaller (staler) position.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

TOKEN_HEADER = "X-Consistency-Token"  # noqa: S105 (a header name, not a secret)
TOKEN_COOKIE = "consistency_token"  # noqa: S105 (a cookie name, not a secret)


def parse_position(position: str) -> dict[int, int]:
    """'0-1-12,1-5-3' -> {domain: sequence}; an empty string is an empty position."""
    result: dict[int, int] = {}
    for gtid in filter(None, (part.strip() for part in position.split(","))):
        domain, _server, sequence = gtid.split("-")
        result[int(domain)] = max(result.get(int(domain), 0), int(sequence))
    return result


def covers(position: str, gtid: str) -> bool:
    """True when a node at POSITION has applied GTID (a position too)."""
    have = parse_position(position)
    return all(have.get(domain, 0) >= seq for domain, seq in parse_position(gtid).items())


def newest(*gtids: str | None) -> str | None:
    """The position that covers all the given ones (per domain, the highest); None if none given."""
    merged: dict[int, tuple[int, str]] = {}
    for position in filter(None, gtids):
        for gtid in filter(None, (part.strip() for part in position.split(","))):
            domain, sequence = int(gtid.split("-")[0]), int(gtid.split("-")[2])
            if domain not in merged or merged[domain][0] < sequence:
                merged[domain] = (sequence, gtid)
    return ",".join(gtid for _, gtid in (merged[d] for d in sorted(merged))) or None


@dataclass(frozen=True)
class Token:
    """What a write tells later reads: its GTID, and whether the cache may be trusted for them."""

    gtid: str
    skip_cache: bool = False


class TokenCodec:
    """Signs and verifies consistency tokens."""

    def __init__(self, secret_key: str) -> None:
        """SECRET_KEY is the HMAC key; every API replica must share it."""
        self._serializer = URLSafeSerializer(secret_key, salt="consistency-token")

    def encode(self, token: Token) -> str:
        """The opaque string sent to the client."""
        return self._serializer.dumps([token.gtid, int(token.skip_cache)])

    def decode(self, raw: str) -> Token | None:
        """The token inside RAW, or None when RAW is malformed or its signature is wrong."""
        try:
            gtid, skip_cache = self._serializer.loads(raw)
            if not isinstance(gtid, str):  # signed, but not by this code: refuse, never crash
                return None
            parse_position(gtid)
        except (BadSignature, ValueError, TypeError):
            return None
        return Token(str(gtid), bool(skip_cache))
