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

    async def _lookup_peers(self, users: list[str]) -> list[set[str]]:
        await self.messaging.summaries_written()  # a chat started a moment ago counts
        found = await self.store.conversations.peers_of_many(users)
        return [found.get(u, set()) for u in users]

    async def _store_last_seen(self, users: list[str]) -> list[datetime]:
        when = self.clock()
        async with self.messaging.lane.hold(BACKGROUND):
            await self.store.users.touch_last_seen(users, when)
        return [when] * len(users)

    def changed(self, user: str, online: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._announce(user, online))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, user: str, online: bool) -> None:
        try:
            # Offline is announced once last_seen is stored, with the stored time.
            when = await self._last_seen.submit(user) if not online else self.clock()
            peers = await self._peers.submit(user)
        except Exception:
            logger.exception("presence update for %s failed", user)
            return
        # The state may have flipped while we looked: announce what is true now.
        now_online = self.hub.is_online(user)
        if now_online != online:
            return
        listeners = self.hub.online(peers)
        if listeners:
            frame = frames.presence(user, online, isoformat(when))
            self.hub.send_many(listeners, frame)

    async def drain(self) -> None:
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._last_seen.drain()
