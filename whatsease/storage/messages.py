"""The ``messages`` collection: one document per message, ``_id`` its time-ordered id.

Each document carries ``members`` (both participants) and ``rev``, a fresh
ObjectId on every change, so "everything of mine changed after X" is one
indexed range query.

Receipts are kept beside the messages, in ``message_receipts``: one small
document per message that moved past Sent, ``{_id: the message's id, status,
delivered_at, read_at, rev, members}``. The embedded database removes and
rewrites every secondary index entry of a document it updates, and a message
has four (two for ``members, rev``, one each for its conversation and its
client id, the last with a unique claim), so a receipt written on the
message touched eight; a receipt document touches three when it is made (its
``_id`` and two members), and a Read four more (bench/README.md, "Database
work per message"). Every read here
lays a message's receipt over it (`_with_receipts`): the status is the
further of the two, and ``rev`` the later, so a sync finds a message again
when either changes. Messages whose status was written on them by earlier
versions keep it.

The messages this process stored lately and made no receipt for are kept in
`RecentMessages` (``recent``, storage/recent.py): a receipt for one of them
needs no read, only an insert that proves the guess (`advance_statuses`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateMany
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.bulk import insert_all
from whatsease.storage.models import STATUS_RANK, STATUSES, Message, is_object_id
from whatsease.storage.recent import RecentMessages

RECEIPTS = "message_receipts"
# Receipts looked up per query by `MessageRepo.sent_between` (point lookups by id).
RECEIPT_LOOKUP_BATCH = 1000

Doc = dict[str, Any]


def _key(doc: Doc) -> tuple[ObjectId, ObjectId]:
    """A message's position in the order of changes: (rev, id)."""
    return doc.get("rev") or doc["_id"], doc["_id"]


def _overlay(doc: Doc, receipt: Doc | None) -> Doc:
    """``doc`` with its receipt laid over it: the further status, the later ``rev``."""
    if receipt is None:
        return doc
    merged = dict(doc)
    if STATUS_RANK[receipt["status"]] > STATUS_RANK[doc["status"]]:
        merged["status"] = receipt["status"]
    if receipt["rev"] > _key(doc)[0]:
        merged["rev"] = receipt["rev"]
    return merged


class MessageRepo:
    def __init__(self, collection: AsyncCollection[Doc],
                 receipts: AsyncCollection[Doc]) -> None:
        self.collection = collection
        # Statuses past Sent, one document per message (see the module's docstring).
        self.receipts = receipts
        # What this process stored lately without a receipt (no command to know it).
        self.recent = RecentMessages()

    async def _receipts_of(self, ids: Iterable[ObjectId]) -> dict[ObjectId, Doc]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        docs = await self.receipts.find({"_id": {"$in": wanted}}).to_list()
        return {d["_id"]: d for d in docs}

    async def _with_receipts(self, docs: list[Doc]) -> list[Message]:
        """``docs`` as messages, each with its receipt laid over it (one query for all)."""
        receipts = await self._receipts_of(d["_id"] for d in docs)
        messages = []
        for doc in docs:
            receipt = receipts.get(doc["_id"])
            message = Message.from_doc(_overlay(doc, receipt))
            message.has_receipt = receipt is not None
            messages.append(message)
        return messages

    async def insert_many(self, messages: Sequence[Message]) -> list[Message]:
        """Insert in one round trip; a (sender, client_id) already stored returns the stored one.

        The result is in the order given, each either the new message or the
        earlier one with the same idempotency key.
        """
        if not messages:
            return []
        duplicates = await insert_all(self.collection, [m.to_doc() for m in messages])
        if not duplicates:
            self.recent.add(messages)
            return list(messages)
        self.recent.add(m for i, m in enumerate(messages) if i not in duplicates)
        keys = [{"sender": messages[i].sender, "client_id": messages[i].client_id}
                for i in duplicates]
        docs = await self.collection.find({"$or": keys}).to_list()
        stored = {(m.sender, m.client_id): m for m in await self._with_receipts(docs)}
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
        return (await self._with_receipts([doc]))[0] if doc else None

    def recently_stored(self, message_ids: Iterable[str]) -> dict[str, Message]:
        """Those of ``message_ids`` this process stored lately and made no receipt for.

        No command: from `recent`, as messages still Sent without content. A
        guess (another instance may have moved one on): write their receipts
        with `advance_statuses`'s ``assumed``.
        """
        return self.recent.find(message_ids)

    async def get_many(self, message_ids: Iterable[str]) -> list[Message]:
        ids = [ObjectId(m) for m in set(message_ids) if is_object_id(m)]
        if not ids:
            return []
        docs = await self.collection.find({"_id": {"$in": ids}}).to_list()
        return await self._with_receipts(docs)

    async def by_client_id(self, sender: str, client_id: str) -> Message | None:
        doc = await self.collection.find_one({"sender": sender, "client_id": client_id})
        return (await self._with_receipts([doc]))[0] if doc else None

    async def history(self, conversation: str, *, before: str | None, limit: int) -> list[Message]:
        """Newest first, strictly older than the ``before`` id when given."""
        filters: dict[str, Any] = {"conversation_id": conversation}
        if before:
            filters["_id"] = {"$lt": ObjectId(before)}
        docs = await self.collection.find(filters).sort("_id", -1).limit(limit).to_list()
        return await self._with_receipts(docs)

    async def changed_since(self, user: str, after: str | None, *, limit: int,
                            after_id: str | None = None) -> list[Message]:
        """Messages to or from ``user`` created or changed after revision ``after``.

        Oldest change first, ties (one receipt batch shares a ``rev``) by id;
        with ``after_id``, the position is (``after``, ``after_id``) in that order.
        A message's change is the later of its own ``rev`` and its receipt's.
        """
        # One range read on each (members, rev) index from ``after`` on; the
        # ties of ``after`` at or before ``after_id`` are dropped here. A filter
        # that says so itself (an ``$or``, or any condition on ``_id``) is
        # planned as a scan of the whole collection, and naming the index makes
        # the embedded database sort every document: each sync with a cursor
        # then cost O(all messages), which stalled the database when many
        # users synced.
        order = [("rev", 1), ("_id", 1)]
        filters: dict[str, Any] = {"members": user}
        rev = ObjectId(after) if after else None
        last = ObjectId(after_id) if after and after_id else None
        if rev is not None:
            filters["rev"] = {"$gte": rev} if last is not None else {"$gt": rev}

        def fresh(key: tuple[ObjectId, ObjectId]) -> bool:
            return rev is None or key[0] != rev or last is None or key[1] > last

        wanted = limit
        while True:
            docs = await self.collection.find(filters).sort(order).limit(wanted).to_list()
            receipts = await self.receipts.find(filters).sort(order).limit(wanted).to_list()
            # Each read is complete up to its last key if it filled its limit: a
            # message whose (later) change is at or below both is in one of them.
            bound = min((_key(read[-1]) for read in (docs, receipts) if len(read) == wanted),
                        default=None)
            by_id = {d["_id"]: d for d in docs}
            more = [r["_id"] for r in receipts if r["_id"] not in by_id]
            if more:  # changed by a receipt only; an erased account's may be gone
                by_id.update({d["_id"]: d for d in await self.collection.find(
                    {"_id": {"$in": more}}).to_list()})
            found = {r["_id"]: r for r in receipts}
            found.update(await self._receipts_of(i for i in by_id if i not in found))
            merged = [_overlay(d, found.get(i)) for i, d in by_id.items()]
            kept = sorted((m for m in merged if fresh(_key(m))
                           and (bound is None or _key(m) <= bound)), key=_key)
            if len(kept) >= limit or bound is None:
                return [Message.from_doc(doc) for doc in kept[:limit]]
            wanted *= 2  # more ties of ``after`` than one page: read further

    async def sent_between(self, after: str, until: str, *, limit: int,
                           keep: Callable[[str, str, str], bool] | None = None,
                           ) -> tuple[list[tuple[str, str, str]], bool]:
        """Messages with an id above ``after`` and below ``until`` that are still ``Sent``
        and not deleted, oldest first, as (id, sender, recipient), only those
        ``keep(id, sender, recipient)`` accepts; and whether every message of the
        range was read (False when it holds more than ``limit``).

        One read of the ``_id`` range, only the fields it needs (the catch-up
        after a lost cluster member reads the last minute with it). On the
        embedded database an ``_id`` range decodes every document of the
        collection whatever its limit, so reading it in pages would cost a
        whole scan per page. A message's own status stays ``Sent`` once a
        receipt moved it on, so the receipts of the messages ``keep`` accepts
        are looked up by id afterwards (point lookups), and those found are
        left out.
        """
        if not (is_object_id(after) and is_object_id(until)):
            return [], True
        docs = await self.collection.find(
            {"_id": {"$gt": ObjectId(after), "$lt": ObjectId(until)}, "status": "Sent",
             "deleted": False},
            {"sender": 1, "recipient": 1}).sort("_id", 1).limit(limit + 1).to_list()
        complete = len(docs) <= limit
        kept = [d for d in docs[:limit]
                if keep is None or keep(str(d["_id"]), d["sender"], d["recipient"])]
        moved: dict[ObjectId, Doc] = {}
        for i in range(0, len(kept), RECEIPT_LOOKUP_BATCH):
            moved.update(await self._receipts_of(
                d["_id"] for d in kept[i:i + RECEIPT_LOOKUP_BATCH]))
        return [(str(d["_id"]), d["sender"], d["recipient"]) for d in kept
                if d["_id"] not in moved], complete

    async def edit(self, message_id: str, sender: str, content: str,
                   now: datetime) -> Message | None:
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(message_id), "sender": sender, "deleted": False},
            {"$set": {"content": content, "edited_at": now, "rev": ObjectId()}},
            return_document=True)
        return (await self._with_receipts([doc]))[0] if doc else None

    async def soft_delete(self, message_id: str, sender: str, now: datetime) -> Message | None:
        """Blank the content and mark it deleted; both sides then see "message deleted"."""
        if not is_object_id(message_id):
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(message_id), "sender": sender, "deleted": False},
            {"$set": {"content": "", "deleted": True, "deleted_at": now, "rev": ObjectId()}},
            return_document=True)
        self.recent.forget([message_id])  # no receipt may be decided from the record now
        return (await self._with_receipts([doc]))[0] if doc else None

    async def advance_statuses(self, changes: dict[str, str], now: datetime,
                               members: dict[str, list[str]] | None = None,
                               receipted: Iterable[str] = (),
                               assumed: Iterable[str] = ()) -> set[str]:
        """Move each message forward to its new status: in its receipt, made or moved on.

        A message without a receipt gets one (one insert for all of them);
        the others' receipts move on in one multi-document update per status
        (on the embedded database about 40% cheaper per message than one
        update each). The receipts of one call share a ``rev`` (sync orders
        ties by id). An update only matches lower statuses, so a status never
        moves back even if two writers race. ``members`` gives each message's
        two participants (read from the messages when not given); the ids in
        ``receipted`` were read with a receipt, which is moved on without
        trying to make one first.

        The ids in ``assumed`` were not read: they were taken from `recent` as
        still Sent without a receipt. Their receipts are made only if none is
        there; one that is (another instance made it meanwhile) is left
        alone, and its id is returned for the caller to read and decide
        again. Every other id is moved as above, and the set returned is
        empty. Whatever happens, the messages in ``changes`` leave `recent`.
        """
        if not changes:
            return set()
        self.recent.forget(changes)
        ids = {message_id: ObjectId(message_id) for message_id in changes}
        if members is None or any(m not in members for m in changes):
            docs = await self.collection.find({"_id": {"$in": list(ids.values())}},
                                              {"members": 1}).to_list()
            members = {str(d["_id"]): d["members"] for d in docs}
        rev = ObjectId()
        had = set(receipted)
        made = [(mid, status) for mid, status in changes.items()
                if mid in members and mid not in had]
        fresh: list[Doc] = [{"_id": ids[mid], "status": status, f"{status.lower()}_at": now,
                             "rev": rev, "members": members[mid]} for mid, status in made]
        # Those made meanwhile (by another instance) are moved on instead.
        taken = await insert_all(self.receipts, fresh) if fresh else set()
        guessed = set(assumed)
        stale = {made[i][0] for i in taken if made[i][0] in guessed}
        by_status: dict[str, list[ObjectId]] = {}
        for mid, status in [made[i] for i in sorted(taken) if made[i][0] not in stale] + [
                (mid, status) for mid, status in changes.items() if mid in had]:
            by_status.setdefault(status, []).append(ids[mid])
        ops = [UpdateMany({"_id": {"$in": moved},
                           "status": {"$in": list(STATUSES[:STATUS_RANK[status]])}},
                          {"$set": {"status": status, "rev": rev,
                                    f"{status.lower()}_at": now}})
               for status, moved in by_status.items()]
        if ops:
            await self.receipts.bulk_write(ops, ordered=False)
        return stale

    async def restamp(self, message_ids: Sequence[str]) -> None:
        """Give these messages one fresh ``rev`` (sync returns them again); nothing else changes."""
        ids = [ObjectId(m) for m in message_ids if is_object_id(m)]
        if ids:
            await self.collection.update_many({"_id": {"$in": ids}},
                                              {"$set": {"rev": ObjectId()}})

    async def delete_all_of(self, user: str) -> int:
        self.recent.clear()  # rare: simpler than finding the user's entries
        result = await self.collection.delete_many({"members": user})
        await self.receipts.delete_many({"members": user})
        return result.deleted_count
