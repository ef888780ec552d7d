"""Which database errors mean "the database cannot be reached" (as opposed to a bad request)."""

from __future__ import annotations

from pymongo.errors import ConnectionFailure

from whatsease.errors import ServiceUnavailable


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now: the driver found no server
    (timeouts, refused connections), or a layer below raised `ServiceUnavailable`.

    Callers outside storage use this instead of importing pymongo: a socket
    closes with "try again later" on these, never with "bad token".
    """
    return isinstance(exc, ConnectionFailure | ServiceUnavailable)
