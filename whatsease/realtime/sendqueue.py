"""A socket's frames not yet written: those of this turn of the loop, and those handed to the
transport whose write has not finished."""

from __future__ import annotations

import asyncio
import functools


class SendQueue:
    """Counts frames handed to the transport whose write has not finished.

    `track` takes the future of one write (carrying ``frames`` frames) and
    says whether the socket is still within ``limit``; when it is not, the
    caller closes it (4008). ``turn`` holds the frames queued in this turn of
    the event loop, which the socket writes together when the turn ends.
    """

    __slots__ = ("limit", "peak", "pending", "turn")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.peak = 0
        self.turn: list[bytes] | None = None

    def track(self, future: asyncio.Future[None], frames: int = 1) -> bool:
        if future.done():
            _consume(future)
            return self.pending <= self.limit
        self.pending += frames
        if self.pending > self.peak:
            self.peak = self.pending
        if frames == 1:
            future.add_done_callback(self._written)
        else:
            future.add_done_callback(functools.partial(self._written_many, frames))
        return self.pending <= self.limit

    def _written(self, future: asyncio.Future[None]) -> None:
        self.pending -= 1
        _consume(future)

    def _written_many(self, frames: int, future: asyncio.Future[None]) -> None:
        self.pending -= frames
        _consume(future)


def _consume(future: asyncio.Future[None]) -> None:
    # A write to a socket that closed meanwhile fails; that is expected and
    # must not be logged as "exception never retrieved".
    if not future.cancelled():
        future.exception()
