"""Errors a use case can end with, independent of HTTP."""

from __future__ import annotations


class NotFound(Exception):
    """The resource the use case needs does not exist."""

    def __init__(self, resource: str, ident: object) -> None:
        """RESOURCE names the kind of thing ('user'); IDENT is the id that was looked up."""
        super().__init__(f"{resource} {ident} does not exist")
        self.resource = resource
        self.ident = ident
