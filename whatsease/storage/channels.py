"""External channels' collections: de-duplication of webhook events, the external
contacts, and the outbound messages' platform ids and delivery states."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

EVENTS = "channel_events"
CONTACTS = "channel_contacts"
OUTBOX = "channel_outbox"

# Platforms redeliver a webhook for up to a day (Meta: "up to 7 days" for some
# failures); keep de-duplication keys a little longer than the longest.
DEDUP_KEEP_SECS = 8 * 86400

CHANNEL_INDEXES: dict[str, list[IndexModel]] = {
    # The _id ("<channel>:<platform id>") is the unique de-duplication key.
    EVENTS: [IndexModel([("at", ASCENDING)], expireAfterSeconds=DEDUP_KEEP_SECS)],
    CONTACTS: [IndexModel([("channel", ASCENDING), ("last_inbound_at", ASCENDING)])],
    OUTBOX: [IndexModel([("channel", ASCENDING), ("platform_id", ASCENDING)], unique=True,
                        partialFilterExpression={"platform_id": {"$type": "string"}}),
             IndexModel([("contact", ASCENDING), ("_id", ASCENDING)])],
}


class ChannelStore:
    """Plain async access to the channel collections (only storage/ imports pymongo)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.events = db[EVENTS]
        self.contacts = db[CONTACTS]
        self.outbox = db[OUTBOX]

    # -- de-duplication
    async def first_time(self, channel: str, platform_id: str, at: datetime) -> bool:
        """Record that an event was seen; False if it was seen before (a redelivery).

        The unique ``_id`` decides, so two concurrent deliveries of one event
        cannot both be first.
        """
        try:
            await self.events.insert_one({"_id": f"{channel}:{platform_id}", "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def forget_event(self, channel: str, platform_id: str) -> None:
        """Undo `first_time` for an event that could not be processed (so a retry is)."""
        await self.events.delete_one({"_id": f"{channel}:{platform_id}"})

    # -- contacts
    async def touch_contact(self, contact: str, channel: str, name: str,
                            at: datetime) -> dict[str, Any]:
        """Record an inbound message from ``contact``; returns the contact as stored before."""
        fields: dict[str, Any] = {"channel": channel, "last_inbound_at": at}
        if name:
            fields["name"] = name
        doc = await self.contacts.find_one_and_update(
            {"_id": contact}, {"$set": fields, "$setOnInsert": {"first_seen": at}},
            upsert=True, return_document=ReturnDocument.BEFORE)
        return doc or {}

    async def contact(self, contact: str) -> dict[str, Any] | None:
        return await self.contacts.find_one({"_id": contact})

    async def set_conversation(self, contact: str, conversation_id: str | None) -> None:
        await self.contacts.update_one({"_id": contact},
                                       {"$set": {"conversation_id": conversation_id}})

    # -- outbound messages
    async def record_out(self, message_id: str, *, channel: str, contact: str, status: str,
                         at: datetime, platform_id: str | None = None,
                         error_code: int | None = None, error: str = "") -> None:
        """Store the outcome of sending our message ``message_id`` to ``contact``."""
        doc: dict[str, Any] = {"channel": channel, "contact": contact, "status": status,
                               "updated_at": at, "error_code": error_code, "error": error}
        if platform_id:
            doc["platform_id"] = platform_id
        await self.outbox.update_one({"_id": message_id},
                                     {"$set": doc, "$setOnInsert": {"created_at": at}},
                                     upsert=True)

    async def out_by_platform_id(self, channel: str, platform_id: str) -> dict[str, Any] | None:
        return await self.outbox.find_one({"channel": channel, "platform_id": platform_id})

    async def out(self, message_id: str) -> dict[str, Any] | None:
        return await self.outbox.find_one({"_id": message_id})

    async def set_out_status(self, message_id: str, status: str, at: datetime, *,
                             allowed_from: tuple[str, ...], error_code: int | None = None,
                             error: str = "") -> bool:
        """Move a sent message's channel status forward; False if it was already past."""
        fields: dict[str, Any] = {"status": status, "updated_at": at}
        if error_code is not None or error:
            fields.update({"error_code": error_code, "error": error})
        result = await self.outbox.update_one(
            {"_id": message_id, "status": {"$in": list(allowed_from)}}, {"$set": fields})
        return result.modified_count == 1

    async def outbox_for(self, contact: str, limit: int = 100) -> list[dict[str, Any]]:
        return await self.outbox.find({"contact": contact}).sort("_id", ASCENDING) \
            .limit(limit).to_list()


def within(last: datetime | None, window: timedelta | None, now: datetime) -> bool:
    """Whether ``now`` is inside the ``window`` after ``last`` (no window: always)."""
    if window is None:
        return True
    return last is not None and now - last < window
