"""Group commit: many callers' writes gathered into one database round trip.

While one flush is in flight, new items queue; when it finishes, everything
queued goes in the next flush. An idle system therefore writes at once, and a
busy one writes in batches as large as the load, with no timer to tune.
Writes nobody waits for can also `linger`: gather for a moment before a
flush, so that each database command carries more items. Writes somebody
waits for can linger only while busy (``busy_window``): an idle system still
writes at once, a busy one trades a few milliseconds for fewer commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Feed items to ``flush`` in batches; `submit` resolves with that item's result.

    ``flush`` receives a list and must return a list of results of the same
    length, in order. If it raises, every caller of that batch gets the error.
    Items given to `submit_nowait` have no caller waiting: a failed batch is
    logged with its traceback instead.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], *,
                 max_batch: int = 1000, name: str = "batch", linger: float = 0.0,
                 busy_window: float | None = None) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self.linger = linger  # seconds a flush waits for more items unless the batch is full
        # Linger only if the previous flush began less than this many seconds
        # before (None: always).
        self.busy_window = busy_window
        self._last_flush = float("-inf")  # loop time the previous flush began
        self.name = name
        self._pending: list[tuple[T, asyncio.Future[R] | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._submitted = 0  # items ever enqueued
        self._settled = 0  # of those, how many have been flushed (or failed)
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        # Set while a flush lingers: resolving it ends the linger at once.
        self._wake: asyncio.Future[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._enqueue(item, future)
        return await future

    def submit_nowait(self, item: T) -> None:
        self._enqueue(item, None)

    async def barrier(self) -> None:
        """Wait until everything submitted before this call has been flushed (or failed).

        Unlike `drain`, later submissions do not make it wait longer. A
        flush that lingers starts at once: someone is waiting for it.
        """
        if self._settled >= self._submitted:
            return
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append((self._submitted, reached))
        self._hurry()
        await reached

    def _hurry(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _enqueue(self, item: T, future: asyncio.Future[R] | None) -> None:
        self._submitted += 1
        self._pending.append((item, future))
        self._idle.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        elif len(self._pending) >= self.max_batch:
            self._hurry()  # a full batch has nothing to wait for

    async def _run(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            while self._pending:
                if self.linger and len(self._pending) < self.max_batch and (
                        self.busy_window is None
                        or loop.time() - self._last_flush < self.busy_window):
                    await self._linger()
                self._last_flush = loop.time()
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._flush_one(batch)
        finally:
            self._task = None
            if self._pending:  # enqueued while we were being cancelled
                self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
            else:
                self._idle.set()

    async def _linger(self) -> None:
        """Wait ``linger`` seconds, or less if a barrier or a full batch ends it."""
        if self._barriers:
            return  # someone already waits for what is pending
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        self._wake = wake
        timer = loop.call_later(self.linger, lambda: None if wake.done() else wake.set_result(None))
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    async def _flush_one(self, batch: list[tuple[T, asyncio.Future[R] | None]]) -> None:
        try:
            await self._flush_items(batch)
        finally:
            self._settled += len(batch)
            still = []
            for target, reached in self._barriers:
                if target <= self._settled:
                    if not reached.done():
                        reached.set_result(None)
                else:
                    still.append((target, reached))
            self._barriers = still

    async def _flush_items(self, batch: list[tuple[T, asyncio.Future[R] | None]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._flush(items)
            if len(results) != len(items):
                raise RuntimeError(f"{self.name}: flush returned {len(results)} results "
                                   f"for {len(items)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                if future is not None and not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            waiting = [f for _, f in batch if f is not None and not f.done()]
            if len(waiting) < len(batch):
                logger.exception("%s: flush of %d items failed", self.name, len(batch))
            for future in waiting:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future is not None and not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Wait until everything submitted so far has been flushed."""
        await self._idle.wait()
