"""Catching up after an instance is lost: its last messages may never have been forwarded.

An instance stores a message, then delivers it: to its own sockets, and over
the internal link to the recipient's home. Killed between the two (or with
the forward still queued), it leaves a stored message whose recipient,
connected to a surviving instance, was never told. Its sender may have had
the ack, so nothing retries it; the recipient would see it only at its next
sync, whenever its socket next reconnects.

So when members leave the ring, every survivor looks for messages that
senders homed on a lost member stored in the last `LOOKBACK_SECS`, that are
addressed to users with a socket here and that are still ``Sent`` (no
receipt yet), and closes those users' sockets here with 4012 ("frames may
have been missed"): their clients reconnect at once and sync. It looks again
a settle window later, for a write of the lost member that the database
applied late. Only the users concerned reconnect; a message that did arrive
but whose receipt is still on its way costs its recipient one needless
reconnection, never a duplicate (sync merges by id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from whatsease.messaging.revisions import SHARED_SETTLE_SECS
from whatsease.storage.messages import MessageRepo
from whatsease.storage.models import id_at

logger = logging.getLogger(__name__)

# How far back a lost member's messages are looked for. It stopped forwarding
# at most a heartbeat timeout before it was declared lost, and under load a
# message can wait in its write queue for tens of seconds (acks ran 27 s
# late at p99 in the 600-user chaos bench): a minute covers both.
LOOKBACK_SECS = 60.0
# The second look, for the lost member's last writes that landed late.
RECHECK_SECS = SHARED_SETTLE_SECS
# Changes read per user (the sync index, one short query each: the embedded
# database serialises its work, so one long scan would stall every write).
# A user with more changes in the window is told to sync regardless.
CHANGES_PER_USER = 200


class CatchUp:
    """Tells this instance's users to sync when a lost member may have owed them a frame."""

    def __init__(self, messages: MessageRepo, local_users: Callable[[], list[str]],
                 tell: Callable[[str], None], recheck_secs: float = RECHECK_SECS) -> None:
        self.messages = messages
        self.local_users = local_users
        self.tell = tell
        self.recheck_secs = recheck_secs
        self._tasks: set[asyncio.Task[None]] = set()

    def members_lost(self, sent_by_lost: Callable[[str], bool]) -> None:
        """Members left the ring; ``sent_by_lost(sender)`` says whether a sender was homed
        on one of them. Runs in the background (call from the event loop)."""
        since = id_at(time.time() - LOOKBACK_SECS)
        task = asyncio.get_running_loop().create_task(self._run(sent_by_lost, since),
                                                      name="messaging-catch-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, sent_by_lost: Callable[[str], bool], since: str) -> None:
        told: set[str] = set()  # message ids whose recipients were told already
        for delay in (0.0, self.recheck_secs):
            await asyncio.sleep(delay)
            owed = 0
            users = []
            for user in self.local_users():
                try:
                    changes = await self.messages.changed_since(user, since,
                                                                limit=CHANGES_PER_USER)
                except Exception:
                    logger.exception("catch-up after a lost member: reading %s's changes "
                                     "failed", user)
                    continue
                mine = [m.message_id for m in changes
                        if m.recipient == user and m.status == "Sent" and not m.deleted
                        and m.message_id not in told and sent_by_lost(m.sender)]
                if mine or len(changes) >= CHANGES_PER_USER:
                    told.update(mine)
                    owed += len(mine)
                    users.append(user)
                    self.tell(user)
            if users:
                logger.info("catch-up after a lost member: %d undelivered messages; %d users "
                            "here told to sync", owed, len(users))

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
