"""A write lane: the hot path's database writes one at a time, most urgent first.

The message path writes in batches (inserts, chat summaries, receipts,
activity). Sent to the database all at once, those commands share its CPU, so
an insert that a recipient is waiting for takes as long as the receipt batch
beside it; the embedded SecantusDB also spends more CPU in total when
commands overlap. Through the lane they go one after another: the most urgent
waiting write goes next, except that after an urgent write any less urgent
one waiting goes first, so nothing starves and an insert waits for at most
one other (bounded) batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

# Priorities: lower goes first.
URGENT = 0  # message inserts: a recipient is waiting
ACK = 1  # chat summaries: the sender's ack waits for them
RECEIPTS = 2
BACKGROUND = 3  # activity entries, last_seen


class WriteLane:
    """Grants `hold` to one caller at a time, in priority order with alternation."""

    def __init__(self) -> None:
        self._busy = False
        self._last = BACKGROUND
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @contextlib.asynccontextmanager
    async def hold(self, priority: int) -> AsyncIterator[None]:
        """Wait for the lane, keep it for the ``async with`` body, then pass it on."""
        if self._busy:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._seq), granted))
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._pass_on()  # granted just as we were cancelled: hand it over
                else:
                    granted.cancel()  # skipped when its turn comes
                raise
        else:
            self._busy = True
        self._last = priority
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        while self._waiting and self._waiting[0][2].cancelled():
            heapq.heappop(self._waiting)
        if not self._waiting:
            self._busy = False
            return
        chosen = 0
        if self._last == URGENT:
            # Alternate: the best waiter that is not urgent, if there is one.
            others = [i for i, w in enumerate(self._waiting)
                      if w[0] != URGENT and not w[2].cancelled()]
            if others:
                chosen = min(others, key=lambda i: self._waiting[i][:2])
        entry = self._waiting[chosen]
        self._waiting[chosen] = self._waiting[-1]
        self._waiting.pop()
        heapq.heapify(self._waiting)
        entry[2].set_result(None)  # the lane stays busy: it is handed over

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiting if not w[2].cancelled())
