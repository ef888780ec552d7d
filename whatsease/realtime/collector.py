"""What the garbage collector walks in a process holding thousands of sockets.

A socket's objects live as long as the socket, and a collection that walks
them stands the event loop still: a full collection over 10,000 sockets took
over a second (../shared/DESIGN.md, performance notes). So once
`FREEZE_AFTER_SOCKETS` are open, what the sockets hold is frozen out of the
collector's sight (``gc.freeze``): every `FREEZE_AFTER_SOCKETS` new ones while a
ramp goes on, the rest once it settles.

From then on two more things keep every collection short:

- What survives a collection is frozen as well, so no collection walks an
  object twice: the state each socket's reader makes anew at every frame and
  pong (Tornado's coroutines and futures, alive until the socket's next frame)
  no longer piles up in the older generations for them to walk.
- The youngest generation is collected every `YOUNG_EVERY_SECS`. CPython counts
  allocations minus frees towards the next young collection, and frees of old
  objects count too: when each pong frees the reader's previous objects and
  makes new ones, the count stands still while the youngest generation grows
  (one young collection at 10,000 sockets walked 99,141 objects: 50 ms).

Frozen objects are still freed when nothing refers to them; only garbage in
reference cycles needs the collector. The chat path makes none (bench/README.md),
Tornado breaks a closed socket's cycles and so do we; as a guard, the freeze is
lifted and a full collection runs (one long pause) when the process's memory
blocks have grown to `SWEEP_GROWTH` times their number at the last deliberate
freeze, or when most frozen sockets have closed. Freezing resumes after it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# From this many sockets on, what they hold is frozen (see the module's docstring).
FREEZE_AFTER_SOCKETS = 1000
# While a ramp goes on (sockets keep arriving), every FREEZE_AFTER_SOCKETS new
# ones are frozen at once: waiting for the ramp's end let each full collection
# during a 10,000-socket ramp walk every socket opened so far (pauses over 50
# ms). The last few hundred are frozen once no socket came for FREEZE_SETTLE_SECS.
FREEZE_TAIL_SOCKETS = 100
FREEZE_SETTLE_SECS = 2.0
# The process's small-object memory blocks (``sys.getallocatedblocks``: cheap,
# where counting the frozen objects walks them all) may grow to this many times
# their number at the last deliberate freeze before the freeze is lifted for a
# full collection: a bound on what garbage in cycles could hold, if any was made.
SWEEP_GROWTH = 2.0
# While sockets are many, the youngest generation is collected this often, in
# seconds, whatever the allocation count says (see the module's docstring): each
# collection then walks about a second's worth of new objects that are still alive.
YOUNG_EVERY_SECS = 1.0
# The collector's youngest generation is collected after this many more
# container objects were allocated than freed (Python's default is 700). The
# chat path leaves no cyclic garbage per message (gc.DEBUG_SAVEALL over a
# 1,000-socket run at 200 msg/s: none in 15 s), so young collections only walk
# the objects of messages still in flight, again and again. Each walk costs per
# reference followed (scattered over the heap: ~13 ms of CPU for one at this
# threshold with 1,000 sockets), so fewer, larger ones cost less in all: at
# 10,000 sockets, 16 collections and 2.1 s of pauses in a minute of sending
# against 602 and 10.2 s with the default (bench/README.md, "tried and dropped").
# The older generations keep their defaults (10 and 10).
GC_YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Collect the youngest generation after `GC_YOUNG_THRESHOLD` net allocations
    (the older generations' thresholds are left as they are)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class Collector:
    """Freezes sockets' objects out of the collector's sight; one per process's realtime service.

    ``sockets`` says how many sockets are open. Call `attached` for every socket
    that joins and `detached` for every one that leaves; `install` hooks the
    collector (``gc.callbacks``) and `uninstall` unhooks it.
    """

    def __init__(self, sockets: Callable[[], int]) -> None:
        self._sockets = sockets
        self._new_since_freeze = 0
        # Sockets open at the last deliberate freeze; 0 while nothing is frozen.
        self.frozen_at = 0
        self._sweep_above = 0  # memory blocks past which a sweep is due
        self._last_attach = 0.0
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._young_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep_due = False
        self.sweeps = 0

    def install(self) -> None:
        """Hook into the collector; call from the event loop's thread."""
        self._loop = asyncio.get_running_loop()
        if self._after_collection not in gc.callbacks:
            gc.callbacks.append(self._after_collection)
        if self._young_timer is None:
            self._young_timer = self._loop.call_later(YOUNG_EVERY_SECS, self._collect_young)

    def uninstall(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        for timer in (self._freeze_timer, self._young_timer):
            if timer is not None:
                timer.cancel()
        self._freeze_timer = self._young_timer = None

    def _collect_young(self) -> None:
        assert self._loop is not None
        self._young_timer = self._loop.call_later(YOUNG_EVERY_SECS, self._collect_young)
        if self.frozen_at:
            gc.collect(0)  # `_after_collection` freezes what survives it

    def attached(self) -> None:
        """A socket joined: freeze every `FREEZE_AFTER_SOCKETS` new ones, and the tail of a ramp."""
        self._new_since_freeze += 1
        loop = asyncio.get_running_loop()
        self._last_attach = loop.time()
        if self._new_since_freeze >= FREEZE_AFTER_SOCKETS:
            self.freeze("during a ramp")
        elif (self._new_since_freeze >= FREEZE_TAIL_SOCKETS and self.frozen_at
              and self._freeze_timer is None):
            self._freeze_timer = loop.call_later(FREEZE_SETTLE_SECS, self._freeze_when_settled)

    def detached(self) -> None:
        """A socket left: once most frozen sockets have gone, let the collector see the rest."""
        if self.frozen_at and self._sockets() < self.frozen_at // 2:
            self._thaw("most frozen sockets have closed")

    def _freeze_when_settled(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_attach
        if quiet < FREEZE_SETTLE_SECS:
            self._freeze_timer = loop.call_later(FREEZE_SETTLE_SECS - quiet,
                                                 self._freeze_when_settled)
            return
        self._freeze_timer = None
        if self._new_since_freeze:
            self.freeze("after a ramp")

    def freeze(self, when: str) -> None:
        """Freeze everything the collector tracks now; later survivors are frozen as they come."""
        # No collection first: a ramp leaves next to no cyclic garbage, and
        # collecting the young generations here walked everything the sockets
        # opened since the last freeze allocated.
        gc.freeze()
        blocks = sys.getallocatedblocks()
        self._new_since_freeze = 0
        self.frozen_at = max(1, self._sockets())
        self._sweep_above = int(blocks * SWEEP_GROWTH)
        logger.info("froze what the collector tracked %s, at %d sockets (%d memory blocks)",
                    when, self.frozen_at, blocks)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Runs in whichever thread allocated when the collection began.
        if phase != "stop":
            return
        if not self.frozen_at:
            # A full collection has just seen everything (the sweep's, or the
            # collector's own): resume freezing if there are sockets enough.
            if info["generation"] == 2 and self._sockets() >= FREEZE_AFTER_SOCKETS:
                self.freeze("after a full collection")
            return
        # The survivors of this collection were just walked: they need not be again.
        gc.freeze()
        blocks = sys.getallocatedblocks()
        if blocks > self._sweep_above:
            self._thaw(f"memory blocks grew to {blocks}, past {self._sweep_above}")

    def _thaw(self, why: str) -> None:
        """Lift the freeze and have a full collection run soon (once)."""
        gc.unfreeze()
        self.frozen_at = 0
        if self._sweep_due or self._loop is None or self._loop.is_closed():
            return
        self._sweep_due = True
        logger.info("lifting the collector's freeze: %s", why)
        self._loop.call_soon_threadsafe(self._sweep)

    def _sweep(self) -> None:
        self._sweep_due = False
        self.sweeps += 1
        gc.collect()  # `_after_collection` freezes again if sockets are many
