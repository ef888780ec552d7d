"""The ``conversations`` collection: one document per pair, with the chat list's summary.

``members`` is sorted and ``unread`` is a document keyed "0" and "1" aligned
with it, so a counter is addressed as ``unread.0`` or ``unread.1`` without a
field named after an email (emails contain dots).

Who is in which chat is indexed in a collection of its own, ``chat_members``
(``{_id: conversation, members, active_at}``), not on the summaries: the
embedded database rewrites every index entry of a document on each update,
and a summary is rewritten for every batch of messages, so an index on its
``members`` (or, for analytics, its time) cost every message its entries
removed and written again (bench/README.md, "Database work per message").
A membership is written when its chat starts and then at most once per
quarter hour: ``active_at`` is the quarter hour of the chat's last message
(`active_slot`), which analytics lists the chats with a message since a
moment by.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from whatsease.storage.bulk import insert_all
from whatsease.storage.journal import unsynced
from whatsease.storage.models import Conversation, Message
from whatsease.storage.onecommit import OneCommit

logger = logging.getLogger(__name__)

MEMBERS = "chat_members"
# Memberships inserted per command by the start-up backfill.
BACKFILL_BATCH = 1000
# Start-up migrations that have completed, by name: each runs until it has once.
MIGRATIONS = "migrations"
BACKFILL_MARK = "chat_members_backfill"
# The grain of a membership's ``active_at``: analytics' quarter hours.
ACTIVE_GRAIN = timedelta(minutes=15)
# Chats whose quarter hour this process wrote last, kept to skip rewriting it
# (forgotten all at once past this many: each then costs one write again).
ACTIVE_REMEMBERED = 100_000
DUPLICATE_KEY = 11000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def active_slot(moment: datetime) -> datetime:
    """The start of the UTC quarter hour ``moment`` is in."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment - (moment - _EPOCH) % ACTIVE_GRAIN


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
        # Who is in which chat (`MEMBERS`), indexed by member and quarter hour.
        self.members = members
        # The quarter hour last written to each chat's membership by this process.
        self._active: dict[str, datetime] = {}
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

        Memberships (`MEMBERS`) are written first, for the chats that start
        or move to a later quarter hour, so analytics finds every chat whose
        summary it could read. A chat the summaries create whose membership
        this process did not write just before gets it written again after
        them: another instance may have erased it (with an account) since.
        """
        messages = list(messages)
        last = {m.conversation_id: m for m in messages}
        moved = [conv for conv, m in last.items()
                 if self._active.get(conv, _EPOCH) < active_slot(m.timestamp)]
        await self._touch_members([last[conv] for conv in moved], sync=sync)
        result = await self._batched.bulk_write(summary_updates(messages), ordered=True,
                                                sync=sync)
        if result is not None and result.upserted_ids:
            written = set(moved)  # just now, before their summaries
            await self._touch_members([last[conv] for conv in result.upserted_ids.values()
                                       if conv not in written], sync=sync)

    async def _touch_members(self, lasts: Sequence[Message], *, sync: bool) -> None:
        """Make each chat's membership, or move its quarter hour on to its last message's."""
        if not lasts:
            return
        ops = [UpdateOne({"_id": m.conversation_id},
                         {"$setOnInsert": {"members": sorted({m.sender, m.recipient})},
                          "$max": {"active_at": active_slot(m.timestamp)}}, upsert=True)
               for m in lasts]
        collection = self.members if sync else unsynced(self.members)
        try:
            await collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            # Two writers made the same membership at once: it exists now.
            await collection.bulk_write([ops[e["index"]] for e in errors], ordered=False)
        if len(self._active) + len(lasts) > ACTIVE_REMEMBERED:
            self._active.clear()
        for m in lasts:
            slot = active_slot(m.timestamp)
            if self._active.get(m.conversation_id, _EPOCH) < slot:
                self._active[m.conversation_id] = slot

    async def backfill_members(self) -> int:
        """Give every chat summary without one its membership; returns how many were added.

        Idempotent; run at start-up. Summaries written before memberships
        existed get theirs here, including those an instance of an earlier
        version wrote during a rolling upgrade (the next start-up finds
        them). It reads every summary and membership, so the first pass that
        finds none missing leaves a mark (`MIGRATIONS`) and later start-ups
        skip it: every chat's membership is written just before its first
        summary since (`record_messages`).
        """
        migrations = self.members.database[MIGRATIONS]
        if await migrations.find_one({"_id": BACKFILL_MARK}) is not None:
            return 0
        have = {doc["_id"] async for doc in self.members.find({}, {"_id": 1})}
        missing = [{"_id": doc["_id"], "members": doc["members"],
                    "active_at": active_slot(doc.get("updated_at") or _EPOCH)}
                   async for doc in self.collection.find({}, {"members": 1, "updated_at": 1})
                   if doc["_id"] not in have and doc.get("members")]
        for i in range(0, len(missing), BACKFILL_BATCH):
            await insert_all(self.members, missing[i:i + BACKFILL_BATCH])
        if missing:
            logger.info("chat memberships backfilled", extra={"count": len(missing)})
        else:
            await migrations.update_one({"_id": BACKFILL_MARK},
                                        {"$set": {"done_at": datetime.now(UTC)}}, upsert=True)
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
        for conv in ids:
            self._active.pop(conv, None)

    async def touch(self, conversation: str, now: datetime) -> None:
        await self.collection.update_one({"_id": conversation}, {"$set": {"updated_at": now}})
