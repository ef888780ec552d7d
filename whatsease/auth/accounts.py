"""Profiles: search, read, update and delete accounts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from whatsease.activity import ActivityLog
from whatsease.auth.service import AuthService
from whatsease.delivery import frames
from whatsease.delivery.frames import WS_4001_UNAUTHENTICATED
from whatsease.delivery.hub import Hub
from whatsease.errors import NotFound
from whatsease.storage.models import User
from whatsease.storage.store import Store

SEARCH_MAX_LIMIT = 50
# How long deleting an account waits for queued activity entries to be written
# before hiding them, in seconds; a busy log never goes idle, so it is bounded.
DRAIN_SECS = 5.0


class Accounts:
    def __init__(self, store: Store, hub: Hub, auth: AuthService, activity: ActivityLog,
                 summaries_written: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.hub = hub
        self.auth = auth
        self.activity = activity
        # Waits until the chat summaries of every message stored so far are
        # written (`Messaging.summaries_written`): they linger a moment after
        # the message, and one written after an erasure would bring its chat back.
        self.summaries_written = summaries_written

    async def search(self, caller: str, query: str, *, limit: int) -> list[User]:
        if not query:
            return []
        return await self.store.users.search(query, limit=min(limit, SEARCH_MAX_LIMIT),
                                             exclude=caller)

    async def get(self, email: str) -> User:
        user = await self.store.users.get(email)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def update(self, email: str, *, name: str) -> User:
        user = await self.store.users.update(email, {"name": name})
        if user is None:
            raise NotFound("No such user.")
        self.auth.forget_user(email)
        self.activity.record("user.updated", email)
        await self.announce_profile(user)
        return user

    async def announce_profile(self, user: User) -> None:
        """Push ``profile {user, name}`` to the online people who share a conversation
        with ``user`` and to ``user``'s own other tabs, so open chat lists and headers
        show a new name at once (a client that is offline gets it from the next list)."""
        await self.summaries_written()  # a chat started a moment ago counts
        peers = (await self.store.conversations.peers_of_many([user.email])).get(user.email,
                                                                                set())
        listeners = self.hub.online(peers | {user.email})
        if listeners:
            self.hub.send_many(listeners, frames.profile(user.email, user.name))

    async def delete(self, email: str) -> None:
        """Erase the account: sessions end and are removed, sockets close, its conversations
        and messages go with it, and it leaves the audience of every activity entry.

        Conversations are removed for both sides so that someone who later
        registers the same email cannot read them.
        """
        await self.auth.revoke_all(email)
        self.hub.close_user(email, WS_4001_UNAUTHENTICATED, "account deleted")
        await self.summaries_written()
        await self.store.messages.delete_all_of(email)
        await self.store.conversations.delete_all_of(email)
        await self.store.documents.delete_many("bot_contexts", {"user": email})
        await self.store.documents.delete_many("bot_turns", {"user": email})
        await self.store.users.delete(email)
        self.auth.forget_user(email)
        # Recorded, flushed, then hidden with the rest of the account's history.
        self.activity.record("user.deleted", email)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.activity.written(), DRAIN_SECS)
        await self.store.activity.forget(email)
        await self.store.sessions.delete_all_of(email)
