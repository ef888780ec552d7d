"""A write lane: the hot path's database writes one at a time, most urgent first.

The message path writes in batches (inserts, chat summaries, receipts,
activity). Sent to the database all at once, those commands share its CPU, so
an insert that a recipient is waiting for takes as long as the receipt batch
beside it; the embedded SecantusDB also spends more CPU in total when
commands overlap. Through the lane they go one after another: an urgent
write goes next whenever the previous one was not urgent; otherwise the other
classes take turns in rotation, so an insert waits for at most one other
(bounded) batch and no class starves while inserts keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

# Priorities: lower goes first.
URGENT = 0  # message inserts: the recipient and the sender wait
ACK = 1  # chat summaries, and other writes someone waits for
RECEIPTS = 2
BACKGROUND = 3  # activity entries, last_seen
_OTHERS = (ACK, RECEIPTS, BACKGROUND)


class WriteLane:
    """Grants `hold` to one caller at a time: urgent and the others alternate, the others rotate."""

    def __init__(self) -> None:
        self._busy = False
        self._last = BACKGROUND
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._turn = 0  # index into _OTHERS of the class whose turn is next

    @contextlib.asynccontextmanager
    async def hold(self, priority: int) -> AsyncIterator[None]:
        """Wait for the lane, keep it for the ``async with`` body, then pass it on."""
        if self._busy:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((priority, next(self._seq), granted))
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
        # A handful of batchers wait at most: linear scans are cheapest.
        self._waiting = [w for w in self._waiting if not w[2].cancelled()]
        if not self._waiting:
            self._busy = False
            return
        live = range(len(self._waiting))
        urgent = [i for i in live if self._waiting[i][0] == URGENT]
        if urgent and self._last != URGENT:
            chosen = min(urgent, key=lambda i: self._waiting[i][1])
        else:
            for step in range(len(_OTHERS)):
                kind = _OTHERS[(self._turn + step) % len(_OTHERS)]
                of_kind = [i for i in live if self._waiting[i][0] == kind]
                if of_kind:
                    chosen = min(of_kind, key=lambda i: self._waiting[i][1])
                    self._turn = (_OTHERS.index(kind) + 1) % len(_OTHERS)
                    break
            else:
                chosen = min(urgent, key=lambda i: self._waiting[i][1])
        entry = self._waiting.pop(chosen)
        entry[2].set_result(None)  # the lane stays busy: it is handed over

    def urgent_next(self) -> bool:
        """Whether an urgent write waits and gets the lane as soon as the current holder leaves it.

        True only while a non-urgent write holds the lane (an urgent one
        goes next after any other). Message inserts are the urgent writes,
        each acknowledged once the database has synced its journal, which
        makes every write committed before it durable too: a holder that
        sees this may leave its own sync to that write.
        """
        if not self._busy or self._last == URGENT:
            return False
        return any(w[0] == URGENT and not w[2].done() for w in self._waiting)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiting if not w[2].cancelled())
