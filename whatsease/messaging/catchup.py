"""Catching up after an instance is lost: its last messages may never have been forwarded.

An instance stores a message, then delivers it: to its own sockets, and over
the internal link to the recipient's home. Killed between the two (or with
the forward still queued), it leaves a stored message whose recipient,
connected to a surviving instance, was never told. Its sender may have had
the ack, so nothing retries it; the recipient would see it only at its next
sync, whenever its socket next reconnects.

So when members leave the ring, every survivor reads the messages stored in
the last `LOOKBACK_SECS` up to the moment of the loss that are still
``Sent`` (no receipt yet), in one read of the ``_id`` range
(`MessageRepo.sent_between`, never one query per user: on the embedded
database every ``_id`` range decodes the whole collection, so pages of it
would each cost that much), and keeps those that

- were sent by a user homed on a lost member,
- are addressed to a user with a socket here who was homed here (or on a
  survivor) before the loss: a user who was homed on the lost member has
  just reconnected here and synced, which brought them all,
- and whose frame never arrived here over the link (`Arrivals`).

Only those recipients' sockets here are closed with 4012 ("frames may have
been missed"): their clients reconnect at once and sync. A message whose
frame did arrive but whose receipt is merely late (a busy recipient, a
receipt batch still queued) costs nothing: an earlier version closed every
recipient of a ``Sent`` message, which under load closed hundreds of sockets
that had missed nothing, and their reconnections and syncs kept the database
saturated for the rest of the minute. The upper bound keeps out the messages
that the lost member's users send after they have moved to a survivor, whose
receipts are naturally still on their way.

It looks again a settle window later, for a write of the lost member that
the database applied late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from whatsease.delivery import frames
from whatsease.messaging.revisions import SHARED_SETTLE_SECS
from whatsease.metrics import CLUSTER_CATCH_UP_TOLD
from whatsease.storage.messages import MessageRepo
from whatsease.storage.models import id_at

logger = logging.getLogger(__name__)

# How far back a lost member's messages are looked for. It stopped forwarding
# at most a heartbeat timeout before it was declared lost, and under load a
# message can wait in its write queue for tens of seconds: a minute covers both.
LOOKBACK_SECS = 60.0
# The second look, for the lost member's last writes that landed late.
RECHECK_SECS = SHARED_SETTLE_SECS
# Messages read at most per look (a minute of a very busy cluster); past
# them, every candidate recipient is told to sync.
MAX_READ = 50_000
# Message frames remembered as having arrived over the link: a minute of
# traffic at a few hundred messages a second, about 100 bytes each.
ARRIVALS_KEPT = 50_000

# ``{"type":"message","message":{"message_id":"`` as the hub encodes it: what a
# message frame starts with (the id is the first field of a message's JSON).
_MESSAGE_PREFIX = frames.message({"message_id": ""}).removesuffix(b'""}}') + b'"'
_ID_CHARS = 24


class Arrivals:
    """The ids of the message frames that arrived here over the internal link, recently.

    Bounded: the oldest are forgotten first (an arrival older than the
    lookback no longer matters).
    """

    def __init__(self, kept: int = ARRIVALS_KEPT) -> None:
        self.kept = kept
        self._ids: OrderedDict[str, None] = OrderedDict()

    def note(self, frame: bytes) -> None:
        """Remember ``frame``'s message id if it is a message frame (cheap otherwise)."""
        if not frame.startswith(_MESSAGE_PREFIX):
            return
        start = len(_MESSAGE_PREFIX)
        message_id = frame[start:start + _ID_CHARS].decode("ascii", "replace")
        self._ids[message_id] = None
        if len(self._ids) > self.kept:
            self._ids.popitem(last=False)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class CatchUp:
    """Tells this instance's users to sync when a lost member may have owed them a frame."""

    def __init__(self, messages: MessageRepo, local_users: Callable[[], list[str]],
                 tell: Callable[[str], None], arrivals: Arrivals | None = None,
                 recheck_secs: float = RECHECK_SECS) -> None:
        self.messages = messages
        self.local_users = local_users
        self.tell = tell
        self.arrivals = arrivals if arrivals is not None else Arrivals()
        self.recheck_secs = recheck_secs
        self._tasks: set[asyncio.Task[None]] = set()

    def members_lost(self, sent_by_lost: Callable[[str], bool],
                     owed_here: Callable[[str], bool]) -> None:
        """Members left the ring; ``sent_by_lost(sender)`` says whether a sender was homed
        on one of them, ``owed_here(user)`` whether a local user's frames came here
        before (False for a user who was homed on a lost member). Runs in the
        background (call from the event loop)."""
        now = time.time()
        since = id_at(now - LOOKBACK_SECS)
        until = id_at(now + 1)  # every id made up to the second of the loss
        task = asyncio.get_running_loop().create_task(
            self._run(sent_by_lost, owed_here, since, until), name="messaging-catch-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, sent_by_lost: Callable[[str], bool], owed_here: Callable[[str], bool],
                   since: str, until: str) -> None:
        told: set[str] = set()  # message ids whose recipients were told already
        for delay in (0.0, self.recheck_secs):
            await asyncio.sleep(delay)
            try:
                await self._look(sent_by_lost, owed_here, since, until, told)
            except Exception:
                logger.exception("catch-up after a lost member: reading the recent messages "
                                 "failed")

    async def _look(self, sent_by_lost: Callable[[str], bool], owed_here: Callable[[str], bool],
                    since: str, until: str, told: set[str]) -> None:
        candidates = {u for u in self.local_users() if owed_here(u)}
        if not candidates:
            return
        owed: dict[str, int] = {}

        def owed_a_frame(message_id: str, sender: str, recipient: str) -> bool:
            return (recipient in candidates and message_id not in told
                    and message_id not in self.arrivals and sent_by_lost(sender))

        missed, complete = await self.messages.sent_between(since, until, limit=MAX_READ,
                                                            keep=owed_a_frame)
        for message_id, _, recipient in missed:
            told.add(message_id)
            owed[recipient] = owed.get(recipient, 0) + 1
        if not complete:
            logger.warning("catch-up after a lost member: more than %d recent messages; every "
                           "user here who was not moved syncs", MAX_READ)
            owed.update(dict.fromkeys(candidates - owed.keys(), 0))
        for user in owed:
            self.tell(user)
        CLUSTER_CATCH_UP_TOLD.inc(len(owed))
        if owed:
            logger.info("catch-up after a lost member: %d undelivered messages; %d users "
                        "here told to sync", sum(owed.values()), len(owed))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
