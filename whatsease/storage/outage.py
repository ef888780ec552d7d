"""Database outages: pymongo's connection failures become `ServiceUnavailable`, fast.

Every operation pymongo runs (reads, writes, commands, cursor batches) passes
through `AsyncMongoClient._retry_internal`; `GuardedClient` wraps that one
method, so a lost database surfaces as one typed error everywhere: REST
answers 503 problem+json with ``Retry-After``, WebSockets close with 1013.

Once the database is known to be unreachable (no server could be selected),
a `Breaker` answers the next requests at once instead of letting each wait out
the server-selection timeout; one request at a time probes the database, and
the first success closes the breaker. A single broken connection (pymongo's
`AutoReconnect` on a server that still answers) fails only its own operation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from whatsease.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# How long the breaker answers 503 by itself before letting one request probe
# the database again: short, because the embedded database restarts in about
# a second and a replica set elects a new primary in a few.
BREAKER_COOLDOWN_SECS = 1.0
# What clients are told to wait before retrying (the header counts whole seconds).
RETRY_AFTER_SECS = 2
UNAVAILABLE_DETAIL = "The database is unreachable; retry shortly."

if not callable(getattr(AsyncMongoClient, "_retry_internal", None)):  # pragma: no cover
    raise ImportError("this pymongo has no AsyncMongoClient._retry_internal; "
                      "whatsease.storage.outage needs updating for it")


def unavailable(exc: BaseException | None = None) -> ServiceUnavailable:
    """The error a request gets while the database cannot be reached."""
    error = ServiceUnavailable(UNAVAILABLE_DETAIL, code="database_unavailable",
                               retry_after=RETRY_AFTER_SECS)
    if exc is not None:
        error.__cause__ = exc
    return error


class Breaker:
    """Fails requests fast while the database is known to be down.

    Closed: every operation runs. After a connection failure it opens: for
    ``cooldown`` seconds every operation fails at once, then a single one is
    let through as a probe while the rest keep failing; the probe's success
    closes it, its failure opens it again.
    """

    def __init__(self, cooldown: float = BREAKER_COOLDOWN_SECS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self.clock = clock
        self.open_until: float | None = None  # None: closed
        self.probing = False
        self.failures = 0  # since the last success, for the logs

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def admit(self) -> bool:
        """Allow an operation, or raise `ServiceUnavailable`; True when it is the probe."""
        if self.open_until is None:
            return False
        if self.probing or self.clock() < self.open_until:
            raise unavailable()
        self.probing = True
        return True

    def succeeded(self, probe: bool) -> None:
        if probe:
            self.probing = False
        if self.open_until is not None:
            logger.warning("the database answers again after %d failed operations",
                           self.failures)
        self.open_until = None
        self.failures = 0

    def failed(self, probe: bool, exc: BaseException) -> None:
        if probe:
            self.probing = False
        if self.open_until is None:
            logger.error("the database is unreachable (%s: %s); answering 503 until it is back",
                         type(exc).__name__, str(exc).split(",")[0][:200])
        self.failures += 1
        self.open_until = self.clock() + self.cooldown

    def abandoned(self, probe: bool) -> None:
        """The operation ended otherwise (cancelled, or a server-side error)."""
        if probe:
            self.probing = False


class GuardedClient(AsyncMongoClient[dict[str, Any]]):
    """An `AsyncMongoClient` whose connection failures raise `ServiceUnavailable`.

    Raises `ServiceUnavailable` (code ``database_unavailable``, ``Retry-After``)
    in place of pymongo's `ConnectionFailure` family: `ServerSelectionTimeoutError`,
    `AutoReconnect`, `NetworkTimeout`, `NotPrimaryError`... Other pymongo errors
    (duplicate keys, bad queries) pass through unchanged.
    """

    def __init__(self, *args: Any, breaker: Breaker | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = breaker or Breaker()

    async def _retry_internal(self, *args: Any, **kwargs: Any) -> Any:
        probe = self.breaker.admit()
        try:
            result = await super()._retry_internal(*args, **kwargs)
        except ServerSelectionTimeoutError as exc:
            self.breaker.failed(probe, exc)
            raise unavailable(exc) from exc
        except ConnectionFailure as exc:
            # The server was selected, so it answered its monitor lately: a
            # broken connection, not (yet) an outage. If the server is gone,
            # the next selection times out and opens the breaker.
            self.breaker.abandoned(probe)
            logger.warning("a database operation failed on a broken connection: %s", exc)
            raise unavailable(exc) from exc
        except BaseException:
            self.breaker.abandoned(probe)
            raise
        self.breaker.succeeded(probe)
        return result
