"""The ``conversations`` collection: one document per pair, with the chat list's summary.

``members`` is sorted and ``unread`` is a document keyed "0" and "1" aligned
with it, so a counter is addressed as ``unread.0`` or ``unread.1`` without a
field named after an email (emails contain dots).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.models import Conversation, Message
from whatsease.storage.onecommit import OneCommit


def _summary(message: Message) -> dict[str, Any]:
    return {"message_id": message.message_id, "sender": message.sender,
            "content": message.content[:200], "timestamp": message.timestamp,
            "status": message.status, "deleted": message.deleted,
            "is_bot_response": message.is_bot_response}


def summary_updates(messages: Iterable[Message]) -> list[UpdateOne]:
    """One upsert per conversation among ``messages``: its last summary and unread counts.

    Each update costs the database a statement and an index entry moved
    (``members, updated_at``), whatever it changes: a chat with several
    messages in one batch (a quick exchange, a bot's answer right after the
    question) costs one.
    """
    last: dict[str, Message] = {}
    received: dict[str, dict[str, int]] = {}
    for m in messages:
        last[m.conversation_id] = m
        counts = received.setdefault(m.conversation_id, {})
        counts[m.recipient] = counts.get(m.recipient, 0) + 1
        counts.setdefault(m.sender, 0)
    ops = []
    for conv, m in last.items():
        members = sorted({m.sender, m.recipient})
        ops.append(UpdateOne(
            {"_id": conv},
            {"$setOnInsert": {"members": members},
             "$set": {"updated_at": m.timestamp, "last_message": _summary(m)},
             "$inc": {f"unread.{members.index(who)}": n
                      for who, n in received[conv].items()}},
            upsert=True))
    return ops


class ConversationRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection
        # The message path's summary and counter writes: one commit per batch.
        self._batched = OneCommit(collection)

    def share(self) -> None:
        """Other processes write these summaries too (a cluster): no transactions.

        A process killed between a transaction's writes and its commit leaves
        the transaction open, holding its documents, until the database's
        transaction lifetime runs out (60 s on MongoDB and SecantusDB); every
        other instance's write to one of those chat summaries retries on the
        conflict meanwhile, inside its write lane, so its inserts and acks stop
        too. One commit per update costs more database CPU but leaves nothing
        open behind a crash.
        """
        self._batched.transactions = False

    async def record_messages(self, messages: Iterable[Message], *, sync: bool = True) -> None:
        """Bump the summary and the unread counts for new messages, in one write.

        Messages are given in the order they were stored; several of one
        conversation make one update (the last one's summary, the counters
        raised by how many each member received), as their updates one after
        the other would have left it. ``sync=False``: see `OneCommit.bulk_write`.
        """
        await self._batched.bulk_write(summary_updates(messages), ordered=True, sync=sync)

    async def refresh_last(self, message: Message) -> None:
        """Rewrite the summary if ``message`` is the conversation's last one."""
        await self.collection.update_one(
            {"_id": message.conversation_id, "last_message.message_id": message.message_id},
            {"$set": {"last_message": _summary(message)}})

    async def bump_statuses(self, changes: list[tuple[str, str, str]],
                            unread_drop: dict[tuple[str, str], int]) -> None:
        """Apply receipts in one write: last-message ticks and unread counters.

        ``changes`` holds (conversation_id, message_id, new status);
        ``unread_drop`` maps (conversation_id, reader) to how many of their
        messages just turned Read.
        """
        ops: list[UpdateOne] = [
            UpdateOne({"_id": conv, "last_message.message_id": mid},
                      {"$set": {"last_message.status": status}})
            for conv, mid, status in changes]
        for (conv, reader), count in unread_drop.items():
            index = sorted(conv.split(" ")).index(reader)
            ops.append(UpdateOne({"_id": conv}, {"$inc": {f"unread.{index}": -count}}))
        await self._batched.bulk_write(ops, ordered=False)

    async def get(self, conversation: str) -> Conversation | None:
        doc = await self.collection.find_one({"_id": conversation})
        return Conversation.from_doc(doc) if doc else None

    async def list_for(self, user: str, *, limit: int) -> list[Conversation]:
        docs = await self.collection.find({"members": user}).sort(
            "updated_at", -1).limit(limit).to_list()
        return [Conversation.from_doc(doc) for doc in docs]

    async def peers_of_many(self, users: Iterable[str], *,
                            limit: int = 50_000) -> dict[str, set[str]]:
        """Each user's conversation peers, for many users in one query."""
        wanted = set(users)
        if not wanted:
            return {}
        docs = await self.collection.find({"members": {"$in": list(wanted)}},
                                          {"members": 1}).limit(limit).to_list()
        peers: dict[str, set[str]] = {u: set() for u in wanted}
        for doc in docs:
            members = doc["members"]
            for member in members:
                if member in peers:
                    peers[member].update(m for m in members if m != member)
        return peers

    async def existing(self, conversations: list[str]) -> set[str]:
        """Which of these conversation ids exist, in one query."""
        docs = await self.collection.find({"_id": {"$in": conversations}}, {"_id": 1}).to_list()
        return {doc["_id"] for doc in docs}

    async def delete_all_of(self, user: str) -> None:
        await self.collection.delete_many({"members": user})

    async def touch(self, conversation: str, now: datetime) -> None:
        await self.collection.update_one({"_id": conversation}, {"$set": {"updated_at": now}})
