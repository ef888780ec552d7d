"""External channels' collections: de-duplication of webhook events, the external
contacts, the outbound messages' platform ids and delivery states, receipts that
came before their message was recorded (shared by every member of a cluster),
and the attachments agents open."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from whatsease.storage.bulk import insert_all

EVENTS = "channel_events"
CONTACTS = "channel_contacts"
OUTBOX = "channel_outbox"
MEDIA = "channel_media"
EARLY = "channel_early_receipts"

# Platforms redeliver a webhook for up to a day (Meta: "up to 7 days" for some
# failures); keep de-duplication keys a little longer than the longest.
DEDUP_KEEP_SECS = 8 * 86400
# Meta keeps an attachment for 30 days; a copy (or its failure) is kept as long.
MEDIA_KEEP_SECS = 30 * 86400
# A receipt for a message not recorded yet is kept this long, in seconds: the race
# with the platform API's answer lasts milliseconds; a minute covers a slow batch.
# (Reads skip older ones: the TTL monitor removes them only once a minute.)
EARLY_RECEIPT_SECS = 60

CHANNEL_INDEXES: dict[str, list[IndexModel]] = {
    # The _id ("<channel>:<platform id>") is the unique de-duplication key.
    EVENTS: [IndexModel([("at", ASCENDING)], expireAfterSeconds=DEDUP_KEEP_SECS)],
    CONTACTS: [IndexModel([("channel", ASCENDING), ("last_inbound_at", ASCENDING)])],
    OUTBOX: [IndexModel([("channel", ASCENDING), ("platform_id", ASCENDING)], unique=True,
                        partialFilterExpression={"platform_id": {"$type": "string"}}),
             IndexModel([("contact", ASCENDING), ("_id", ASCENDING)]),
             IndexModel([("conversation_id", ASCENDING), ("status", ASCENDING)],
                        partialFilterExpression={"conversation_id": {"$type": "string"}})],
    # _id is the support message's id the attachment came with.
    MEDIA: [IndexModel([("conversation_id", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("created_at", ASCENDING)], expireAfterSeconds=MEDIA_KEEP_SECS)],
    # _id is "<channel>:<platform id>:<status>": one receipt of each kind per message.
    EARLY: [IndexModel([("channel", ASCENDING), ("platform_id", ASCENDING)]),
            IndexModel([("at", ASCENDING)], expireAfterSeconds=EARLY_RECEIPT_SECS)],
}


class ChannelStore:
    """Plain async access to the channel collections (only storage/ imports pymongo)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.events = db[EVENTS]
        self.contacts = db[CONTACTS]
        self.outbox = db[OUTBOX]
        self.media = db[MEDIA]
        self.early = db[EARLY]

    async def ensure_indexes(self) -> None:
        """Create the channel collections' indexes (idempotent)."""
        for name, models in CHANNEL_INDEXES.items():
            await self.db[name].create_indexes(models)

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

    async def first_times(self, keys: list[tuple[str, str]], at: datetime) -> list[bool]:
        """`first_time` for many ``(channel, platform id)`` events in one round trip."""
        duplicates = await insert_all(self.events, [{"_id": f"{channel}:{platform_id}",
                                                     "at": at} for channel, platform_id in keys])
        return [i not in duplicates for i in range(len(keys))]

    async def forget_event(self, channel: str, platform_id: str) -> None:
        """Undo `first_time` for an event that could not be processed (so a retry is)."""
        await self.events.delete_one({"_id": f"{channel}:{platform_id}"})

    # -- contacts
    async def touch_contacts(self, touches: list[tuple[str, str, str, datetime]]) -> None:
        """`touch_contact` for many ``(contact, channel, name, at)`` in one round trip."""
        ops = []
        for contact, channel, name, at in touches:
            fields: dict[str, Any] = {"channel": channel, "last_inbound_at": at}
            if name:
                fields["name"] = name
            ops.append(UpdateOne({"_id": contact},
                                 {"$set": fields, "$setOnInsert": {"first_seen": at}},
                                 upsert=True))
        if ops:
            await self.contacts.bulk_write(ops, ordered=True)

    async def contact(self, contact: str) -> dict[str, Any] | None:
        return await self.contacts.find_one({"_id": contact})

    async def set_conversation(self, contact: str, conversation_id: str | None) -> None:
        await self.contacts.update_one({"_id": contact},
                                       {"$set": {"conversation_id": conversation_id}})

    # -- outbound messages
    async def record_outs(self, records: list[dict[str, Any]]) -> None:
        """`record_out` for many records (its keyword arguments as dicts) in one round trip."""
        ops = []
        for r in records:
            doc: dict[str, Any] = {"channel": r["channel"], "contact": r["contact"],
                                   "status": r["status"], "updated_at": r["at"],
                                   "error_code": r.get("error_code"), "error": r.get("error", "")}
            if r.get("platform_id"):
                doc["platform_id"] = r["platform_id"]
            if r.get("conversation_id"):
                doc["conversation_id"] = r["conversation_id"]
            ops.append(UpdateOne({"_id": r["message_id"]},
                                 {"$set": doc, "$setOnInsert": {"created_at": r["at"]}},
                                 upsert=True))
        if ops:
            await self.outbox.bulk_write(ops, ordered=True)

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

    async def outs(self, message_ids: list[str]) -> list[dict[str, Any]]:
        """The delivery records of these messages (those that have one)."""
        if not message_ids:
            return []
        return await self.outbox.find({"_id": {"$in": message_ids}}).to_list()

    async def deliveries_for(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """A support conversation's replies to the platform and how far each got, newest first."""
        return await self.outbox.find({"conversation_id": conversation_id}) \
            .sort("_id", DESCENDING).limit(limit).to_list()

    # -- receipts that came before their message was recorded
    async def keep_early(self, receipt: dict[str, Any], at: datetime, *, limit: int) -> bool:
        """Keep ``receipt`` (``channel``, ``platform_id``, ``status``, ...) for whichever
        member records its message; False (nothing kept) when ``limit`` fresh receipts
        are kept already.

        Kept once per channel, platform id and status: a redelivery changes nothing.
        """
        if await self.early.count_documents({}, limit=limit) >= limit:
            await self.early.delete_many(
                {"at": {"$lt": at - timedelta(seconds=EARLY_RECEIPT_SECS)}})
            if await self.early.count_documents({}, limit=limit) >= limit:
                return False
        key = f"{receipt['channel']}:{receipt['platform_id']}:{receipt['status']}"
        await self.early.update_one({"_id": key}, {"$setOnInsert": {**receipt, "at": at}},
                                    upsert=True)
        return True

    async def take_early(self, keys: list[tuple[str, str]], now: datetime
                         ) -> list[dict[str, Any]]:
        """Remove and return the fresh receipts kept for these ``(channel, platform id)``."""
        by_channel: dict[str, list[str]] = {}
        for channel, platform_id in keys:
            by_channel.setdefault(channel, []).append(platform_id)
        if not by_channel:
            return []
        docs = await self.early.find({
            "$or": [{"channel": c, "platform_id": {"$in": ids}} for c, ids in by_channel.items()],
            "at": {"$gte": now - timedelta(seconds=EARLY_RECEIPT_SECS)}}).to_list()
        if docs:
            await self.early.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return docs

    async def drop_early(self, channel: str, platform_id: str, status: str) -> None:
        await self.early.delete_one({"_id": f"{channel}:{platform_id}:{status}"})

    # -- attachments
    async def add_media(self, message_id: str, *, conversation_id: str, slug: str,
                        contact: str, media: dict[str, Any], at: datetime) -> None:
        """Remember that support message ``message_id`` came with ``media`` (idempotent)."""
        await self.media.update_one(
            {"_id": message_id},
            {"$setOnInsert": {"conversation_id": conversation_id, "slug": slug,
                              "contact": contact, "media": media, "created_at": at}},
            upsert=True)

    async def media_of(self, message_id: str) -> dict[str, Any] | None:
        """An attachment's record, without its bytes."""
        return await self.media.find_one({"_id": message_id}, {"file": 0})

    async def media_for(self, conversation_id: str, limit: int) -> list[dict[str, Any]]:
        """A conversation's attachments (without bytes), newest first."""
        return await self.media.find({"conversation_id": conversation_id}, {"file": 0}) \
            .sort("_id", DESCENDING).limit(limit).to_list()

    async def media_file(self, message_id: str) -> dict[str, Any] | None:
        """The stored copy: ``{"file", "content_type", "filename"}``, or None."""
        doc = await self.media.find_one({"_id": message_id, "file": {"$exists": True}},
                                        {"file": 1, "content_type": 1, "filename": 1})
        if doc is None:
            return None
        return {"file": bytes(doc["file"]), "content_type": doc["content_type"],
                "filename": doc.get("filename", "")}

    async def set_media_file(self, message_id: str, content: bytes, content_type: str,
                             filename: str, at: datetime) -> None:
        await self.media.update_one({"_id": message_id}, {
            "$set": {"file": Binary(content), "content_type": content_type,
                     "filename": filename, "size": len(content), "fetched_at": at},
            "$unset": {"error": ""}})

    async def set_media_error(self, message_id: str, error: str, at: datetime) -> None:
        """Remember a failure that asking again would not mend."""
        await self.media.update_one({"_id": message_id},
                                    {"$set": {"error": error, "fetched_at": at}})


def within(last: datetime | None, window: timedelta | None, now: datetime) -> bool:
    """Whether ``now`` is inside the ``window`` after ``last`` (no window: always)."""
    if window is None:
        return True
    return last is not None and now - last < window
