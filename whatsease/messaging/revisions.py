"""Revisions in flight: what keeps ``sync`` from handing out a cursor past an unwritten change.

Every change to a message gives it a fresh ``rev`` (an ObjectId) and sync
pages by ``rev``: a cursor says "every change below this position is yours
already". That holds only if no change can still land below a cursor once it
is handed out. Two writers make that hard:

- In one process, writes overlap (inserts, receipts, edits run in separate
  batches), so a sync could see a later change while an earlier one is still
  in flight. A write registers a *floor* below every rev it will use before
  it makes them; the cursor stays below the lowest floor in flight.
- Several processes writing one database (a cluster). An ObjectId is four
  bytes of whole seconds, five bytes drawn once per process, and a counter:
  within one second two processes' revs sort by their random bytes, not by
  time, and another process's write in flight is invisible here. So a shared
  database also holds the cursor below a *time bound*: the lowest id of the
  second `SHARED_SETTLE_SECS` ago. It compares seconds only, so it orders
  revs of every process alike. A writer keeps its side of the bargain: a
  change whose write finished more than `SHARED_SETTLE_SECS` minus
  `CLOCK_SKEW_SECS` after its rev was made is *overdue* and gets a fresh rev
  (`overdue`; the caller rewrites it), so every change lands at or above the
  bound of any sync that ran before it landed.

  Why the rewrite must stay rare and off the hot path: it is one more write,
  asked for exactly when the database is behind. So a writer makes its revs
  when its write starts, never earlier (a new message's rev is not its id,
  made when the send was queued: under load the queue alone took longer than
  the window, so every batch was overdue), the rewrite runs in the
  background, many changes to one command, outside the write lane and off
  the ack path, and a change is rewritten at most twice. Rewriting on the
  ack path, up to twenty times, with revs dating from the queue, made a
  lagging database lag further: a feedback loop that stalled the cluster
  after a member was lost. Why one or two rewrites suffice: the fresh rev is
  made after the gate below is passed, so only the time the command itself
  takes counts, and a single small update taking four seconds means the
  database is saturated; more writes would not help it.

  Why this and not floors exchanged over the internal link: a member that
  has just joined, or whose link is down, would write below a floor nobody
  heard of; the time bound needs no message and no membership. Its price is
  that a cursor lags the newest changes by a few seconds, so the next sync
  returns those again: clients merge messages by ``message_id`` (the protocol
  says so), and a page held back this way is continued by position
  (`Cursor`), so a long tail never makes a client ask for the same page twice.
  One process (cluster off) keeps the floors alone and pays nothing.

A document whose ``rev`` changes while a query walks the index can be missed
at both its old and its new position (MongoDB gives no snapshot across a
find). So a sync's read runs while no message write of this process does
(`reading` waits for writes in progress and holds new ones back; reads
share); writes are batched, so the wait is one batch at most. Another
process's write can move a document under the read: its new rev lands above
the time bound, so the cursor stays below it and the next sync returns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from whatsease.storage.models import id_at, id_seconds, new_id

# How far behind the wall clock a cursor stays when other processes write
# the same database. Every write that takes longer gets a fresh rev, so this
# bounds nothing but the lag; large enough that an ordinary write under load
# (batch wait, write lane, the database's own latency: well under a second)
# never needs a second one.
SHARED_SETTLE_SECS = 5.0
# How far the clocks of two instances may disagree (NTP keeps Fly machines
# within milliseconds; one host's processes share a clock). Taken off the
# settle window when a writer decides whether its change is overdue.
CLOCK_SKEW_SECS = 1.0
# Separates a cursor's settled position from where its paging continues.
RESUME_MARK = "~"


@dataclass(frozen=True)
class Cursor:
    """A sync position: ``settled`` (every change up to it was returned, and
    nothing can land below it any more) and, while a held-back tail is being
    paged, ``resume`` (where the next page starts).

    As text: ``REV.ID`` (a position in the order of changes; a bare message
    id means "after that message was sent"), optionally followed by
    ``~REV.ID`` for the resume position. An empty settled part means "from
    the start".
    """

    settled: str = ""
    resume: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        settled, _, resume = (text or "").partition(RESUME_MARK)
        return cls(settled, resume)

    def text(self) -> str | None:
        if self.resume:
            return f"{self.settled}{RESUME_MARK}{self.resume}"
        return self.settled or None


class Revisions:
    """Keeps `sync` from skipping a change: the floors of revisions in flight, a
    time bound when the database is shared, and a gate between reads and writes."""

    def __init__(self, settle_secs: float | None = None) -> None:
        self._floors: dict[int, str] = {}
        self._next = 0
        self._writers = 0
        self._readers = 0
        self._readers_waiting = 0
        self._writers_waiting = 0
        # Bumped to let every reader (writer) waiting at that moment in.
        self._read_phase = 0
        self._write_phase = 0
        self._changed = asyncio.Condition()
        self.settle_secs = settle_secs

    def share(self, settle_secs: float = SHARED_SETTLE_SECS) -> None:
        """Other processes write the same database from now on (a cluster):
        hold cursors below the time bound, and have writers mind `overdue`."""
        if settle_secs <= CLOCK_SKEW_SECS:
            raise ValueError(f"settle window {settle_secs} s must exceed the clock skew "
                             f"allowance of {CLOCK_SKEW_SECS} s")
        self.settle_secs = settle_secs

    @property
    def shared(self) -> bool:
        return self.settle_secs is not None

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold for a message write: no sync read of this process meanwhile (writes share)."""
        async with self._changed:
            if self._readers or self._readers_waiting:
                ticket = self._write_phase
                self._writers_waiting += 1
                try:
                    await self._changed.wait_for(
                        lambda: self._write_phase != ticket and not self._readers)
                except BaseException:  # cancelled: the turn may have been ours
                    self._writers_waiting -= 1
                    self._hand_over()
                    raise
                self._writers_waiting -= 1
            self._writers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._writers -= 1
                self._hand_over(readers_next=True)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Hold for a sync read: no message write of this process meanwhile (reads share).

        Phase-fair: a side that arrives while the other is inside or waiting
        waits for the next turn, and every waiter of a side goes in together
        when its turn comes. Reads used to go first whenever one waited, so a
        few hundred clients syncing at once after a ring change (a query each)
        kept every insert, and so every ack, waiting until the last of them had
        read.
        """
        async with self._changed:
            if self._writers or self._writers_waiting:
                ticket = self._read_phase
                self._readers_waiting += 1
                try:
                    await self._changed.wait_for(
                        lambda: self._read_phase != ticket and not self._writers)
                except BaseException:  # cancelled: the turn may have been ours
                    self._readers_waiting -= 1
                    self._hand_over()
                    raise
                self._readers_waiting -= 1
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._hand_over(readers_next=False)

    def _hand_over(self, readers_next: bool | None = None) -> None:
        """Nobody inside any more: give the turn to the side waiting (the other side
        first when both wait: ``readers_next`` after writes, not after reads)."""
        if self._readers or self._writers:
            return
        if self._readers_waiting and (readers_next is not False or not self._writers_waiting):
            self._read_phase += 1
        elif self._writers_waiting:
            self._write_phase += 1
        self._changed.notify_all()

    def begin(self) -> int:
        self._next += 1
        self._floors[self._next] = new_id()
        return self._next

    def end(self, token: int) -> None:
        self._floors.pop(token, None)

    def settled_below(self) -> str:
        """Every change with a lower rev is stored; call before reading."""
        settled = min(self._floors.values(), default=None) or new_id()
        if self.settle_secs is not None:
            settled = min(settled, id_at(time.time() - self.settle_secs))
        return settled

    def settled_from(self, message_id: str) -> str:
        """Where a sync ``after`` a bare message id may start without skipping anything.

        A message id (a client's newest message, from its chat list) is no
        position in the order of changes. One process stores its messages in
        the order of their ids, so the id will do; when the database is
        shared, a message of another instance with a lower id may still land,
        so the sync starts a settle window earlier.
        """
        if self.settle_secs is None:
            return message_id
        return min(message_id, id_at(id_seconds(message_id) - self.settle_secs))

    def overdue(self, made_at: float) -> bool:
        """Whether a change whose rev was made at ``made_at`` (Unix time, or any
        earlier time) and whose write has just finished needs a fresh rev.

        Only when the database is shared: a sync elsewhere may already have
        handed out a cursor above that rev.
        """
        if self.settle_secs is None:
            return False
        return time.time() - made_at > self.settle_secs - CLOCK_SKEW_SECS
