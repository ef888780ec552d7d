"""A socket's count of frames handed to the transport and not yet written."""

from __future__ import annotations

import asyncio


class SendQueue:
    """Counts frames handed to the transport whose write has not finished.

    `track` takes the future a write returned and says whether the socket is
    still within ``limit``; when it is not, the caller closes it (4008).
    """

    __slots__ = ("limit", "peak", "pending")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.peak = 0

    def track(self, future: asyncio.Future[None]) -> bool:
        if future.done():
            _consume(future)
            return True
        self.pending += 1
        if self.pending > self.peak:
            self.peak = self.pending
        future.add_done_callback(self._written)
        return self.pending <= self.limit

    def _written(self, future: asyncio.Future[None]) -> None:
        self.pending -= 1
        _consume(future)


def _consume(future: asyncio.Future[None]) -> None:
    # A write to a socket that closed meanwhile fails; that is expected and
    # must not be logged as "exception never retrieved".
    if not future.cancelled():
        future.exception()
