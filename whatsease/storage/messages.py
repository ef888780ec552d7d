"""The ``messages`` collection: one document per message, ``_id`` its time-ordered id.

Each document carries ``members`` (both participants) and ``rev``, a fresh
ObjectId on every change, so "everything of mine changed after X" is one
indexed range query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateMany
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.bulk import insert_all
from whatsease.storage.models import STATUS_RANK, STATUSES, Message, is_object_id


class MessageRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert_many(self, messages: Sequence[Message]) -> list[Message]:
        """Insert in one round trip; a (sender, client_id) already stored returns the stored one.

        The result is in the order given, each either the new message or the
        earlier one with the same idempotency key.
        """
        if not messages:
            return []
        duplicates = await insert_all(self.collection, [m.to_doc() for m in messages])
        if not duplicates:
            return list(messages)
        keys = [{"sender": messages[i].sender, "client_id": messages[i].client_id}
                for i in duplicates]
        docs = await self.collection.find({"$or": keys}).to_list()
        stored = {(d["sender"], d.get("client_id")): Message.from_doc(d) for d in docs}
        result = []
        for i, message in enumerate(messages):
            if i in duplicates:
                earlier = stored.get((message.sender, message.client_id))
                if earlier is None:  # deleted between the insert and the lookup
                    raise RuntimeError("duplicate message vanished during insert")
                earlier.extra["duplicate"] = True
                result.append(earlier)
            else:
                result.append(message)
        return result

    async def get(self, message_id: str) -> Message | None:
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one({"_id": ObjectId(message_id)})
        return Message.from_doc(doc) if doc else None

    async def get_many(self, message_ids: Iterable[str]) -> list[Message]:
        ids = [ObjectId(m) for m in set(message_ids) if is_object_id(m)]
        if not ids:
            return []
        docs = await self.collection.find({"_id": {"$in": ids}}).to_list()
        return [Message.from_doc(doc) for doc in docs]

    async def by_client_id(self, sender: str, client_id: str) -> Message | None:
        doc = await self.collection.find_one({"sender": sender, "client_id": client_id})
        return Message.from_doc(doc) if doc else None

    async def history(self, conversation: str, *, before: str | None, limit: int) -> list[Message]:
        """Newest first, strictly older than the ``before`` id when given."""
        filters: dict[str, Any] = {"conversation_id": conversation}
        if before:
            filters["_id"] = {"$lt": ObjectId(before)}
        docs = await self.collection.find(filters).sort("_id", -1).limit(limit).to_list()
        return [Message.from_doc(doc) for doc in docs]

    async def changed_since(self, user: str, after: str | None, *, limit: int,
                            after_id: str | None = None) -> list[Message]:
        """Messages to or from ``user`` created or changed after revision ``after``.

        Oldest change first, ties (one receipt batch shares a ``rev``) by id;
        with ``after_id``, the position is (``after``, ``after_id``) in that order.
        """
        order = [("rev", 1), ("_id", 1)]
        filters: dict[str, Any] = {"members": user}
        if not after:
            docs = await self.collection.find(filters).sort(order).limit(limit).to_list()
            return [Message.from_doc(doc) for doc in docs]
        # One range read on the (members, rev) index from ``after`` on; the ties of
        # ``after`` at or before ``after_id`` are dropped here. A filter that says
        # so itself (an ``$or``, or any condition on ``_id``) is planned as a scan
        # of the whole collection, and naming the index makes the embedded
        # database sort every document: each sync with a cursor then cost
        # O(all messages), which stalled the database when many users synced.
        rev = ObjectId(after)
        last = ObjectId(after_id) if after_id else None
        filters["rev"] = {"$gte": rev} if last is not None else {"$gt": rev}
        wanted = limit
        while True:
            docs = await self.collection.find(filters).sort(order).limit(wanted).to_list()
            kept = [d for d in docs
                    if last is None or d.get("rev") != rev or d["_id"] > last]
            if len(kept) >= limit or len(docs) < wanted:
                return [Message.from_doc(doc) for doc in kept[:limit]]
            wanted *= 2  # more ties of ``after`` than one page: read further

    async def sent_between(self, after: str, until: str, *,
                           limit: int) -> list[tuple[str, str, str]]:
        """Messages with an id above ``after`` and below ``until`` that are still ``Sent``
        and not deleted, oldest first: (id, sender, recipient), ``limit`` at most.

        One range read on ``_id`` (the catch-up after a lost cluster member
        pages through the last minute with it); only the fields it needs.
        """
        if not (is_object_id(after) and is_object_id(until)):
            return []
        docs = await self.collection.find(
            {"_id": {"$gt": ObjectId(after), "$lt": ObjectId(until)}, "status": "Sent",
             "deleted": False},
            {"sender": 1, "recipient": 1}).sort("_id", 1).limit(limit).to_list()
        return [(str(d["_id"]), d["sender"], d["recipient"]) for d in docs]

    async def edit(self, message_id: str, sender: str, content: str,
                   now: datetime) -> Message | None:
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(message_id), "sender": sender, "deleted": False},
            {"$set": {"content": content, "edited_at": now, "rev": ObjectId()}},
            return_document=True)
        return Message.from_doc(doc) if doc else None

    async def soft_delete(self, message_id: str, sender: str, now: datetime) -> Message | None:
        """Blank the content and mark it deleted; both sides then see "message deleted"."""
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(message_id), "sender": sender, "deleted": False},
            {"$set": {"content": "", "deleted": True, "deleted_at": now, "rev": ObjectId()}},
            return_document=True)
        return Message.from_doc(doc) if doc else None

    async def advance_statuses(self, changes: dict[str, str], now: datetime) -> None:
        """Move each message forward to its new status, in one bulk write.

        One multi-document update per status: on the embedded database that
        costs about 40% less per message than one update each. The messages
        of one update share a ``rev`` (sync orders ties by id). The filter
        only matches lower statuses, so a status never moves back even if two
        writers race.
        """
        by_status: dict[str, list[ObjectId]] = {}
        for message_id, status in changes.items():
            by_status.setdefault(status, []).append(ObjectId(message_id))
        ops = [UpdateMany({"_id": {"$in": ids},
                           "status": {"$in": list(STATUSES[:STATUS_RANK[status]])},
                           "deleted": False},
                          {"$set": {"status": status, "rev": ObjectId(),
                                    f"{status.lower()}_at": now}})
               for status, ids in by_status.items()]
        if ops:
            await self.collection.bulk_write(ops, ordered=False)

    async def restamp(self, message_ids: Sequence[str]) -> None:
        """Give these messages one fresh ``rev`` (sync returns them again); nothing else changes."""
        ids = [ObjectId(m) for m in message_ids if is_object_id(m)]
        if ids:
            await self.collection.update_many({"_id": {"$in": ids}},
                                              {"$set": {"rev": ObjectId()}})

    async def delete_all_of(self, user: str) -> int:
        result = await self.collection.delete_many({"members": user})
        return result.deleted_count
