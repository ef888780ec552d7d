"""Revisions in flight: what keeps ``sync`` from handing out a cursor past an unwritten change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from whatsease.storage.models import new_id


class Revisions:
    """Keeps `sync` from skipping a change: the floors of revisions in flight, and a gate.

    Every change to a message gives it a fresh ``rev`` (an ObjectId, rising in
    this process) and sync pages by ``rev``. Two hazards:

    - Writes overlap (inserts, receipts, edits run in separate batches), so a
      sync could see a later change while an earlier one is still in flight
      and hand out a cursor past it. A write registers a floor below every
      rev it will use before it makes them; sync's cursor stays below the
      lowest floor in flight.
    - A document whose ``rev`` changes while a query walks the index can be
      missed at both its old and its new position (MongoDB gives no snapshot
      across a find). So a sync's read runs while no message write does
      (`reading` waits for writes in progress and holds new ones back; reads
      share). Writes are batched, so the wait is one batch at most.
    """

    def __init__(self) -> None:
        self._floors: dict[int, str] = {}
        self._next = 0
        self._writers = 0
        self._readers = 0
        self._readers_waiting = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._readers and not self._readers_waiting)
            self._writers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._writers -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        async with self._changed:
            self._readers_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._writers)
            finally:
                self._readers_waiting -= 1
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    def begin(self) -> int:
        self._next += 1
        self._floors[self._next] = new_id()
        return self._next

    def end(self, token: int) -> None:
        self._floors.pop(token, None)

    def settled_below(self) -> str:
        """Every change with a lower rev is stored; call before reading."""
        return min(self._floors.values(), default=None) or new_id()
