"""Customer support's collections: organisations, widget conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from whatsease.storage.bulk import insert_all
from whatsease.storage.errors import Duplicate
from whatsease.storage.models import is_object_id
from whatsease.storage.support_models import Org, SupportConversation, SupportMessage

ORGS = "support_orgs"
CONVERSATIONS = "support_conversations"
MESSAGES = "support_messages"

SUPPORT_INDEXES: dict[str, list[IndexModel]] = {
    ORGS: [IndexModel([("widget_key", ASCENDING)], unique=True)],
    CONVERSATIONS: [
        IndexModel([("org", ASCENDING), ("status", ASCENDING), ("handler", ASCENDING),
                    ("agent", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("customer_email", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("org", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
    ],
    MESSAGES: [
        IndexModel([("conversation_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("conversation_id", ASCENDING), ("client_id", ASCENDING)], unique=True,
                   partialFilterExpression={"client_id": {"$type": "string"}}),
    ],
}


class OrgRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert(self, org: Org) -> None:
        """Insert a new org; raise `Duplicate` if its id (or key) is taken."""
        try:
            await self.collection.insert_one(org.to_doc())
        except DuplicateKeyError:
            raise Duplicate(org.org_id) from None

    async def get(self, org_id: str) -> Org | None:
        doc = await self.collection.find_one({"_id": org_id})
        return Org.from_doc(doc) if doc else None

    async def by_widget_key(self, key: str) -> Org | None:
        doc = await self.collection.find_one({"widget_key": key})
        return Org.from_doc(doc) if doc else None

    async def find(self, *, limit: int) -> list[Org]:
        docs = await self.collection.find({}).sort("_id", ASCENDING).limit(limit).to_list()
        return [Org.from_doc(doc) for doc in docs]

    async def update(self, org_id: str, fields: dict[str, object]) -> Org | None:
        doc = await self.collection.find_one_and_update(
            {"_id": org_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)
        return Org.from_doc(doc) if doc else None

    async def delete(self, org_id: str) -> bool:
        result = await self.collection.delete_one({"_id": org_id})
        return result.deleted_count == 1


class SupportConversationRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert(self, conversation: SupportConversation) -> None:
        await self.collection.insert_one(conversation.to_doc())

    async def get(self, conversation_id: str) -> SupportConversation | None:
        if not is_object_id(conversation_id):
            return None
        doc = await self.collection.find_one({"_id": ObjectId(conversation_id)})
        return SupportConversation.from_doc(doc) if doc else None

    async def update(self, conversation_id: str, fields: dict[str, object], *,
                     active_only: bool = True, push_agent: str | None = None,
                     expect: dict[str, object] | None = None) -> SupportConversation | None:
        """Set ``fields``; with ``active_only`` only while the conversation is active.

        ``expect`` adds conditions (field → value) the stored document must meet.
        Returns the updated conversation, or None if it did not match.
        """
        filters: dict[str, object] = {"_id": ObjectId(conversation_id)}
        if active_only:
            filters["status"] = "active"
        filters.update(expect or {})
        update: dict[str, object] = {"$set": fields}
        if push_agent is not None:
            update["$addToSet"] = {"agents": push_agent}
        doc = await self.collection.find_one_and_update(
            filters, update, return_document=ReturnDocument.AFTER)
        return SupportConversation.from_doc(doc) if doc else None

    async def record_message(self, conversation_id: str, *, now: datetime,
                             expires_at: datetime | None, summary: dict[str, object],
                             unread: int, fields: dict[str, object] | None = None,
                             ) -> SupportConversation | None:
        """Count a new message in, if the conversation is active and not yet expired at ``now``.

        ``expires_at`` None leaves the expiry as it is (system notes do not keep a
        session alive). Returns None when the conversation has ended (or is due to).
        """
        changes: dict[str, object] = {"last_message": summary, **(fields or {})}
        increments = {"message_count": 1}
        if unread:
            increments["unread"] = unread
        if expires_at is not None:
            changes["last_message_at"] = now
            changes["expires_at"] = expires_at
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(conversation_id), "status": "active", "expires_at": {"$gt": now}},
            {"$set": changes, "$inc": increments},
            return_document=ReturnDocument.AFTER)
        return SupportConversation.from_doc(doc) if doc else None

    async def end(self, conversation_id: str, *, now: datetime, reason: str,
                  due_by: datetime | None = None) -> SupportConversation | None:
        """End an active conversation; with ``due_by``, only if it expired by then."""
        filters: dict[str, object] = {"_id": ObjectId(conversation_id), "status": "active"}
        if due_by is not None:
            filters["expires_at"] = {"$lte": due_by}
        doc = await self.collection.find_one_and_update(
            filters, {"$set": {"status": "ended", "ended_at": now, "end_reason": reason}},
            return_document=ReturnDocument.AFTER)
        return SupportConversation.from_doc(doc) if doc else None

    async def due(self, now: datetime, *, limit: int) -> list[str]:
        """Ids of active conversations whose expiry time has come at ``now``."""
        docs = await self.collection.find(
            {"status": "active", "expires_at": {"$lte": now}}, {"_id": 1},
        ).limit(limit).to_list()
        return [str(doc["_id"]) for doc in docs]

    async def find(self, org: str, *, status: str | None = None, handler: str | None = None,
                   agent: str | None = None, customer: str | None = None,
                   handled_by: str | None = None, before: str | None = None, limit: int,
                   oldest_first: bool = False) -> list[SupportConversation]:
        filters: dict[str, object] = {"org": org}
        if status is not None:
            filters["status"] = status
        if handler is not None:
            filters["handler"] = handler
        if agent is not None:
            filters["agent"] = agent
        if customer is not None:
            filters["customer_email"] = customer
        if handled_by is not None:
            filters["agents"] = handled_by
        if before is not None:
            filters["_id"] = {"$lt": ObjectId(before)}
        cursor = self.collection.find(filters).sort("_id", ASCENDING if oldest_first
                                                    else DESCENDING)
        docs = await cursor.limit(limit).to_list()
        return [SupportConversation.from_doc(doc) for doc in docs]

    async def loads(self, org: str, agents: list[str]) -> dict[str, int]:
        """Active conversations each agent is answering (0 for those with none)."""
        counts: dict[str, int] = dict.fromkeys(agents, 0)
        if not agents:
            return counts
        cursor = await self.collection.aggregate([
            {"$match": {"org": org, "status": "active", "handler": "agent",
                        "agent": {"$in": agents}}},
            {"$group": {"_id": "$agent", "n": {"$sum": 1}}}])
        for doc in await cursor.to_list():
            counts[doc["_id"]] = int(doc["n"])
        return counts

    async def first_responses(self, org: str, *, since: datetime) -> dict[str, tuple[float, int]]:
        """Per agent: mean first-response time in seconds and how many it averages."""
        cursor = await self.collection.aggregate([
            {"$match": {"org": org, "first_response_at": {"$gte": since},
                        "first_responder": {"$type": "string"}}},
            {"$group": {"_id": "$first_responder", "mean": {"$avg": "$first_response_secs"},
                        "n": {"$sum": 1}}}])
        return {doc["_id"]: (float(doc["mean"] or 0.0), int(doc["n"]))
                for doc in await cursor.to_list()}

    async def delete_for_org(self, org: str) -> None:
        await self.collection.delete_many({"org": org})


class SupportMessageRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert(self, message: SupportMessage) -> SupportMessage:
        """Store a message; a retried ``client_id`` returns the one stored first."""
        try:
            await self.collection.insert_one(message.to_doc())
        except DuplicateKeyError:
            earlier = await self.by_client_id(message.conversation_id, message.client_id or "")
            if earlier is None:
                raise
            return earlier
        return message

    async def insert_many(self, messages: list[SupportMessage]) -> list[SupportMessage]:
        """Store a batch in one round trip; each retried ``client_id`` returns the one stored
        first. The result is in the order given."""
        if not messages:
            return []
        duplicates = await insert_all(self.collection, [m.to_doc() for m in messages])
        result = list(messages)
        for i in duplicates:
            earlier = await self.by_client_id(messages[i].conversation_id,
                                              messages[i].client_id or "")
            if earlier is None:
                raise DuplicateKeyError(f"support message {messages[i].message_id}")
            result[i] = earlier
        return result

    async def delete(self, message_id: str) -> None:
        """Remove one message (one that was stored for a conversation that had just ended)."""
        if is_object_id(message_id):
            await self.collection.delete_one({"_id": ObjectId(message_id)})

    async def by_client_id(self, conversation_id: str, client_id: str) -> SupportMessage | None:
        doc = await self.collection.find_one({"conversation_id": conversation_id,
                                              "client_id": client_id})
        return SupportMessage.from_doc(doc) if doc else None

    async def history(self, conversation_id: str, *, before: str | None,
                      limit: int) -> list[SupportMessage]:
        """Newest first, older than ``before``."""
        filters: dict[str, object] = {"conversation_id": conversation_id}
        if before is not None:
            filters["_id"] = {"$lt": ObjectId(before)}
        docs = await self.collection.find(filters).sort("_id", DESCENDING).limit(
            limit).to_list()
        return [SupportMessage.from_doc(doc) for doc in docs]

    async def get(self, message_id: str) -> SupportMessage | None:
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one({"_id": ObjectId(message_id)})
        return SupportMessage.from_doc(doc) if doc else None

    async def delete_for_org(self, org: str) -> None:
        await self.collection.delete_many({"org": org})


class SupportStore:
    """The support repositories over the application's database."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.orgs = OrgRepo(db[ORGS])
        self.conversations = SupportConversationRepo(db[CONVERSATIONS])
        self.messages = SupportMessageRepo(db[MESSAGES])
