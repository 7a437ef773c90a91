"""MariaDB GTID positions: parsing, comparing, merging (pure functions).

A GTID is ``domain-server-sequence``; a position is a comma-separated list of GTIDs, one per
replication domain. A node *covers* a GTID when its position holds a sequence number at least as
high in that GTID's domain (sequence numbers grow monotonically within a domain).
"""

from __future__ import annotations


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
