"""Errors that end a request, whoever raised them: the HTTP layer maps each to one answer.

Nothing here knows HTTP, Flask or a driver. The application layer (``app.services``) and the
parts below it raise these; ``app.api.problems`` alone turns them into problem+json answers.
"""

from __future__ import annotations


class NotFound(Exception):
    """The resource the use case needs does not exist."""

    def __init__(self, resource: str, ident: object) -> None:
        """RESOURCE names the kind of thing ('user'); IDENT is the id that was looked up."""
        super().__init__(f"{resource} {ident} does not exist")
        self.resource, self.ident = resource, ident

    @property
    def text(self) -> bytes:
        """What a cached 404 holds: the message, for the HTTP layer to render."""
        return str(self).encode()


class DatabaseUnavailable(Exception):
    """No database node could do the work: unreachable, lost mid-way, or out of retries."""


class NoNodeAvailable(DatabaseUnavailable):
    """Neither a replica nor the primary could be opened for a read."""


class BreakerOpen(Exception):
    """A circuit breaker refused the call without trying it; it may pass again in OPEN_S."""

    def __init__(self, name: str, open_s: float = 0.0) -> None:
        """NAME is the breaker's dependency ('primary', 'replica-1', 'redis')."""
        super().__init__(name)
        self.name, self.open_s = name, open_s


class Saturated(Exception):
    """Every slot of a bulkhead is taken: the work is refused at once, never queued."""


class InvalidKey(Exception):
    """An API key is malformed, unknown, or its secret does not match (the reason is the text)."""


class MalformedKey(InvalidKey):
    """Not even shaped like a key (nginx limits such requests as if they had none)."""


class RevokedKey(Exception):
    """An API key existed and was revoked (the text is its key id)."""


class KeyInProgress(Exception):
    """An Idempotency-Key is held by a request that has not committed yet."""


class KeyReused(Exception):
    """An Idempotency-Key was used before for a different request."""
