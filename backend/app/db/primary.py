"""The primary, for the processes that write without the API's router: the heartbeat writer, the
relays and the operator's CLI. One small engine on the member that takes writes (found as the
API's workers find it: the one writable member, or of several the newest epoch; topology.py),
followed to another member after a call failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from app.config import Settings
from app.db.engines import Engines, find_primary, make_engine

T = TypeVar("T")
log = logging.getLogger(__name__)


class FollowedPrimary:
    """An engine (one connection) on the primary, moved when the primary moves."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.engines = settings, Engines(settings)
        self.address = find_primary(settings, self.engines)
        self.engine: Engine = self.make()

    def make(self) -> Engine:
        return make_engine(self.settings, self.address, pool_size=1, max_overflow=0)

    def run(self, work: Callable[[Any], T]) -> T:
        """WORK(conn) in one transaction on the primary."""
        with self.engine.begin() as conn:
            return work(conn)

    def follow(self) -> bool:
        """After a failed call: look for the member that takes writes now; True when it moved."""
        moved = find_primary(self.settings, self.engines)
        if moved == self.address:
            return False
        log.warning("following the primary", extra={"from": self.address, "to": moved})
        self.engine.dispose()
        self.address = moved
        self.engine = self.make()
        return True
