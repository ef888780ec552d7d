"""Presence (online, last seen) and typing indicators, each told only to the people concerned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from whatsease.batching import Batcher
from whatsease.delivery import frames
from whatsease.delivery.hub import Connection, Hub
from whatsease.messaging.service import Messaging
from whatsease.storage.store import Store
from whatsease.timeutil import isoformat, utcnow
from whatsease.writelane import BACKGROUND

logger = logging.getLogger(__name__)

# The peer sees "typing" stop this long after the last typing frame, so a
# client that vanishes mid-word never leaves the indicator stuck.
TYPING_EXPIRY_SECS = 6.0
# Conversations one user may show "typing" in at once.
MAX_TYPING_TARGETS = 32
# Users per last-seen write at shutdown: each chunk is stored before the next
# starts, so a shutdown that runs out of time keeps what it wrote (SecantusDB
# takes about a second per thousand; MongoDB milliseconds).
LAST_SEEN_CHUNK = 1000


class Typing:
    """Who is typing to whom; each indicator stops by itself after `TYPING_EXPIRY_SECS`."""

    def __init__(self, hub: Hub, expiry: float = TYPING_EXPIRY_SECS) -> None:
        self.hub = hub
        self.expiry = expiry
        # (typer, peer) -> (expiry timer, the socket it came from)
        self._active: dict[tuple[str, str], tuple[asyncio.TimerHandle, Connection]] = {}
        self._per_user: dict[str, int] = {}
        self._to_peer: dict[str, set[str]] = {}  # peer -> who is typing to them

    def typing_to(self, peer: str) -> list[str]:
        """Who is typing to ``peer`` now (for a socket of theirs that just connected)."""
        return sorted(self._to_peer.get(peer, ()))

    def update(self, conn: Connection, peer: str, state: bool) -> None:
        key = (conn.user, peer)
        current = self._active.get(key)
        if not state:
            if current is not None:
                self._stop(key)
            return
        loop = asyncio.get_running_loop()
        if current is not None:
            current[0].cancel()
        elif self._per_user.get(conn.user, 0) >= MAX_TYPING_TARGETS:
            return
        else:
            self._per_user[conn.user] = self._per_user.get(conn.user, 0) + 1
            self._to_peer.setdefault(peer, set()).add(conn.user)
            self.hub.send(peer, frames.chat_typing(conn.user, True))
        self._active[key] = (loop.call_later(self.expiry, self._stop, key), conn)

    def _stop(self, key: tuple[str, str]) -> None:
        entry = self._active.pop(key, None)
        if entry is None:
            return
        entry[0].cancel()
        left = self._per_user.get(key[0], 1) - 1
        if left > 0:
            self._per_user[key[0]] = left
        else:
            self._per_user.pop(key[0], None)
        typers = self._to_peer.get(key[1])
        if typers is not None:
            typers.discard(key[0])
            if not typers:
                del self._to_peer[key[1]]
        self.hub.send(key[1], frames.chat_typing(key[0], False))

    def drop(self, conn: Connection) -> None:
        """The socket closed: whatever it was typing stops now."""
        for key in [k for k, (_, c) in self._active.items() if c is conn]:
            self._stop(key)

    def stop_sender(self, user: str, peer: str) -> None:
        """A message was sent: its sender is no longer typing to that peer."""
        if (user, peer) in self._active:
            self._stop((user, peer))


class Presence:
    """Online with a user's first socket, offline (last_seen stored) with the last.

    Announced only to users who share a conversation; the lookups of who those
    are, and the last_seen writes, are batched across users.
    """

    def __init__(self, store: Store, hub: Hub, messaging: Messaging,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.hub = hub
        self.messaging = messaging
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._peers: Batcher[str, set[str]] = Batcher(self._lookup_peers, name="presence-peers")
        self._last_seen: Batcher[str, datetime] = Batcher(self._store_last_seen,
                                                     name="presence-last-seen")
        # Whose offline last_seen is submitted but not written yet (with how many
        # writes wait): with who is online here (the hub), what a shutdown must store.
        self._unwritten: dict[str, int] = {}
        # Set once the process stops: the time stored for everyone above, and who they were.
        self._stopped_at: datetime | None = None
        self._covered: frozenset[str] = frozenset()
        self._stop_write: asyncio.Task[int] | None = None

    async def _lookup_peers(self, users: list[str]) -> list[set[str]]:
        await self.messaging.summaries_written()  # a chat started a moment ago counts
        found = await self.store.conversations.peers_of_many(users)
        return [found.get(u, set()) for u in users]

    async def _store_last_seen(self, users: list[str]) -> list[datetime]:
        when = self.clock()
        try:
            if self._stopped_at is None:
                async with self.messaging.lane.hold(BACKGROUND):
                    await self._touch_uncovered(users, when)
            else:
                # Stopping: the lane is flushing inserts, and the database client
                # closes soon; most of these users were stored by `stopping` already.
                await self._touch_uncovered(users, when)
        finally:
            for user in users:
                left = self._unwritten.get(user, 1) - 1
                if left > 0:
                    self._unwritten[user] = left
                else:
                    self._unwritten.pop(user, None)
        stopped_at = self._stopped_at
        return [stopped_at if stopped_at is not None and u in self._covered else when
                for u in users]

    async def _touch_uncovered(self, users: list[str], when: datetime) -> None:
        left = [u for u in users if u not in self._covered]
        if left:
            await self.store.users.touch_last_seen(left, when)

    def changed(self, user: str, online: bool) -> None:
        if not online:
            self._unwritten[user] = self._unwritten.get(user, 0) + 1
        task = asyncio.get_running_loop().create_task(self._announce(user, online))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, user: str, online: bool) -> None:
        try:
            # Offline is announced once last_seen is stored, with the stored time.
            when = await self._last_seen.submit(user) if not online else self.clock()
            peers = await self._peers.submit(user)
        except Exception:
            if self._stopped_at is None:
                logger.exception("presence update for %s failed", user)
            else:
                # The database client closes under the last announcements; their
                # last_seen was stored by `stopping`.
                logger.debug("presence update for %s not made at shutdown", user)
            return
        # The state may have flipped while we looked: announce what is true now.
        now_online = self.hub.is_online(user)
        if now_online != online:
            return
        listeners = self.hub.online(peers)
        if listeners:
            frame = frames.presence(user, online, isoformat(when))
            self.hub.send_many(listeners, frame)

    def stopping(self) -> asyncio.Task[int]:
        """The process stops: store now as the last_seen of every user online here, and of
        those whose offline write has not happened, in one write per `LAST_SEEN_CHUNK` users.

        Call it before the sockets close. The write goes straight to the
        database (not behind the write lane, which is flushing messages), and
        the offline changes the closing sockets cause store nothing more for
        those users, so their last_seen does not depend on the shutdown's
        flush. Returns the task writing (its result: how many users); the
        caller bounds the wait. A database error is logged, never raised.
        """
        when = self.clock()
        users = sorted(set(self.hub.users()) | self._unwritten.keys())
        self._stopped_at = when
        self._covered = frozenset(users)
        task = asyncio.get_running_loop().create_task(self._store_all(users, when),
                                                      name="presence-last-seen-at-stop")
        self._stop_write = task
        return task

    async def _store_all(self, users: list[str], when: datetime) -> int:
        try:
            for start in range(0, len(users), LAST_SEEN_CHUNK):
                await self.store.users.touch_last_seen(users[start:start + LAST_SEEN_CHUNK], when)
        except Exception as exc:  # noqa: BLE001  # shutdown goes on; the log says what was lost
            logger.warning("presence: the last_seen of %d users was not stored at shutdown: %s",
                           len(users), exc)
            return 0
        return len(users)

    async def drain(self) -> None:
        if self._stop_write is not None:
            # Gathered: cancelled by the shutdown's bound, it must not cancel this drain.
            await asyncio.gather(self._stop_write, return_exceptions=True)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._last_seen.drain()
