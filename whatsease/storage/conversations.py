"""The ``conversations`` collection: one document per pair, with the chat list's summary.

``members`` is sorted and ``unread`` is a document keyed "0" and "1" aligned
with it, so a counter is addressed as ``unread.0`` or ``unread.1`` without a
field named after an email (emails contain dots).

Who is in which chat is indexed in a collection of its own, ``chat_members``
(``{_id: conversation, members}``, written once per chat), not on the
summaries: the embedded database rewrites every index entry of a document
on each update, and a summary is rewritten for every batch of messages, so
an index on its ``members`` cost every message two entries removed and two
written again (bench/README.md, "Database work per message").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.bulk import insert_all
from whatsease.storage.journal import unsynced
from whatsease.storage.models import Conversation, Message
from whatsease.storage.onecommit import OneCommit

logger = logging.getLogger(__name__)

MEMBERS = "chat_members"
# Memberships inserted per command by the start-up backfill.
BACKFILL_BATCH = 1000


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
    def __init__(self, collection: AsyncCollection[dict[str, Any]],
                 members: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection
        # Who is in which chat (`MEMBERS`), indexed by member.
        self.members = members
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

        A chat this creates gets its membership right after (`MEMBERS`); a
        process that dies in between leaves it to the next start-up's
        `backfill_members`.
        """
        messages = list(messages)
        ops = summary_updates(messages)
        result = await self._batched.bulk_write(ops, ordered=True, sync=sync)
        if result is None or not result.upserted_ids:
            return
        members = {m.conversation_id: sorted({m.sender, m.recipient}) for m in messages}
        created = [{"_id": conv, "members": members[conv]}
                   for conv in result.upserted_ids.values()]
        # A membership an erased chat left behind is the same document: kept.
        await insert_all(self.members if sync else unsynced(self.members), created)

    async def backfill_members(self) -> int:
        """Give every chat summary without one its membership; returns how many were added.

        Idempotent; run at start-up. Summaries written before memberships
        existed get theirs here, as does a chat whose process died between
        its summary and its membership.
        """
        have = {doc["_id"] async for doc in self.members.find({}, {"_id": 1})}
        missing = [{"_id": doc["_id"], "members": doc["members"]}
                   async for doc in self.collection.find({}, {"members": 1})
                   if doc["_id"] not in have and doc.get("members")]
        for i in range(0, len(missing), BACKFILL_BATCH):
            await insert_all(self.members, missing[i:i + BACKFILL_BATCH])
        if missing:
            logger.info("chat memberships backfilled", extra={"count": len(missing)})
        return len(missing)

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

    async def ids_of(self, user: str) -> list[str]:
        """The ids of every chat ``user`` is in."""
        return [doc["_id"] async for doc in self.members.find({"members": user}, {"_id": 1})]

    async def list_for(self, user: str, *, limit: int) -> list[Conversation]:
        """``user``'s chats, the most recently written first."""
        ids = await self.ids_of(user)
        if not ids:
            return []
        docs = await self.collection.find({"_id": {"$in": ids}}).sort(
            "updated_at", -1).limit(limit).to_list()
        return [Conversation.from_doc(doc) for doc in docs]

    async def peers_of_many(self, users: Iterable[str], *,
                            limit: int = 50_000) -> dict[str, set[str]]:
        """Each user's conversation peers, for many users in one query."""
        wanted = set(users)
        if not wanted:
            return {}
        docs = await self.members.find({"members": {"$in": list(wanted)}},
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
        ids = await self.ids_of(user)
        if ids:
            await self.collection.delete_many({"_id": {"$in": ids}})
        await self.members.delete_many({"members": user})

    async def touch(self, conversation: str, now: datetime) -> None:
        await self.collection.update_one({"_id": conversation}, {"$set": {"updated_at": now}})
