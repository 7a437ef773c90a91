"""Which database node serves a unit of work, and why.

The decision is made once per unit of work, never per statement: SQLAlchemy's own docs warn
that routing statements of one transaction to different nodes is incoherent (a read after a
write in the same transaction could miss that write). So callers declare intent up front:

* ``writer()`` - the primary, in one transaction, for anything that writes (and any read whose
  answer a write depends on, such as the row returned after an UPDATE);
* ``reader()`` - a replica, round robin, for plain reads. A replica that cannot be reached is
  skipped for the next one; with none reachable the read falls back to the primary.

The router knows nothing of HTTP: it reports the node it chose through ``UnitOfWork.node``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

PRIMARY = "primary"
log = logging.getLogger(__name__)


@dataclass
class UnitOfWork:
    """An open connection in a transaction, and the name of the node it talks to."""

    node: str
    conn: Connection


class Router:
    """Routes units of work to the primary or to one of the replicas."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        """ENGINES maps node names to engines; it must hold 'primary'."""
        self.engines = engines
        self.replica_names = [name for name in engines if name != PRIMARY]
        # Each worker process starts at a random replica, so that the first reads of many
        # freshly started workers do not all land on replica-1.
        self._turn = itertools.count(random.randrange(max(len(self.replica_names), 1)))

    def read_candidates(self) -> list[str]:
        """Nodes to try for a plain read, in order: replicas from the next in turn, then primary."""
        if not self.replica_names:
            return [PRIMARY]
        start = next(self._turn) % len(self.replica_names)
        ordered = self.replica_names[start:] + self.replica_names[:start]
        return [*ordered, PRIMARY]

    @contextmanager
    def writer(self) -> Iterator[UnitOfWork]:
        """A transaction on the primary, committed when the block ends without error."""
        with self.engines[PRIMARY].begin() as conn:
            yield UnitOfWork(PRIMARY, conn)

    @contextmanager
    def reader(self) -> Iterator[UnitOfWork]:
        """A transaction on the first node of read_candidates() that accepts a connection."""
        candidates = self.read_candidates()
        for name in candidates:
            try:
                conn = self.engines[name].connect()
            except DBAPIError as error:
                if name == candidates[-1]:
                    raise
                log.warning(
                    "node unavailable for reads, trying the next",
                    extra={"node": name, "error": str(error.orig)},
                )
                continue
            with conn, conn.begin():
                yield UnitOfWork(name, conn)
            return
