"""The activity log: one entry per action, written in batches and pushed live to its audience."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from whatsease.batching import Batcher
from whatsease.delivery import frames
from whatsease.delivery.hub import Hub
from whatsease.metrics import BATCH_SIZE
from whatsease.storage.models import ActivityEntry
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow
from whatsease.writelane import BACKGROUND, WriteLane

# Entries per insert: bounds how long one write holds the lane (tens of ms).
FLUSH_MAX_ENTRIES = 48
# Entries gather this long before an insert, in seconds: the feed shows them
# that much later, and the database spends far less per entry.
FLUSH_LINGER_SECS = 0.1

# Kinds and the sentence each one reads as; {actor} and {target} are filled in.
SENTENCES: dict[str, str] = {
    "user.registered": "{actor} registered",
    "user.login": "{actor} logged in",
    "user.logout": "{actor} logged out",
    "user.updated": "{actor} updated their profile",
    "user.deleted": "{actor} deleted their account",
    "session.revoked": "{actor} revoked a session",
    "message.sent": "{actor} sent a message to {target}",
    "message.edited": "{actor} edited a message to {target}",
    "message.deleted": "{actor} deleted a message to {target}",
    "message.delivered": "a message from {target} was delivered to {actor}",
    "message.read": "{actor} read a message from {target}",
    "bot.replied": "{actor} replied to {target}",
}


def sentence(kind: str, actor: str, target: str | None) -> str:
    template = SENTENCES.get(kind, "{actor}: " + kind)
    return template.format(actor=actor, target=target or "")


class ActivityLog:
    """Record actions. `record` never waits for the database; entries are flushed in batches.

    Each entry goes live (an ``activity`` frame) to its audience once it is stored.
    """

    def __init__(self, store: Store, hub: Hub, clock: Callable[[], datetime] = utcnow,
                 lane: WriteLane | None = None) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        # Shared with the message path (messaging takes it from here), whose
        # writes go before these.
        self.lane = lane or WriteLane()
        self._batcher: Batcher[ActivityEntry, None] = Batcher(
            self._flush, max_batch=FLUSH_MAX_ENTRIES, name="activity",
            linger=FLUSH_LINGER_SECS)

    def record(self, kind: str, actor: str, *, target: str | None = None,
               message_id: str | None = None, audience: Iterable[str] = (),
               text: str | None = None, data: dict[str, object] | None = None) -> ActivityEntry:
        people = {actor, *audience}
        if target and not target.startswith("bot:"):
            people.add(target)
        entry = ActivityEntry(kind=kind, actor=actor, target=target, message_id=message_id,
                              text=text or sentence(kind, actor, target), time=self.clock(),
                              audience=sorted(p for p in people if not p.startswith("bot:")),
                              data=data or {})
        self._batcher.submit_nowait(entry)
        return entry

    async def _flush(self, entries: list[ActivityEntry]) -> list[None]:
        BATCH_SIZE.labels("activity").observe(len(entries))
        async with self.lane.hold(BACKGROUND):
            # An insert waiting behind this write syncs the journal for both.
            await self.store.activity.insert_many(entries, sync=not self.lane.urgent_next())
        for entry in entries:
            frame = frames.activity(entry.to_json())
            self.hub.send_many(entry.audience, frame)
        return [None] * len(entries)

    async def drain(self) -> None:
        await self._batcher.drain()

    async def written(self) -> None:
        """Wait until every entry recorded before this call is stored (later ones do not count)."""
        await self._batcher.barrier()

    async def list_for(self, user: str, *, before: str | None, limit: int,
                       kinds: Sequence[str] = ()) -> list[ActivityEntry]:
        # Entries linger before they are written: what was recorded before
        # this read is in it (someone who just acted sees it in their feed).
        await self.written()
        return await self.store.activity.list_for(user, before=before, limit=limit, kinds=kinds)
