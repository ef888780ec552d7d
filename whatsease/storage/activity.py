"""The ``activity`` collection: entries, visible to their ``audience``, stored a batch per document.

Every message writes two entries (sent, then delivered), so each document and
index entry here is paid per message. A flush of the log therefore stores its
entries as one document per second of their ids, ``{_id, first, audience,
entries}``: ``_id`` is the newest entry's id and ``first`` the oldest's, and
``audience`` the union of the entries' audiences, which the one index
(``audience, _id``) holds. A batch of 48 entries then costs one document and
one index entry per person in it (the two entries of a message share both
people) instead of 48 documents and three entries each (bench/README.md,
"Database work per message").

Entries written by earlier versions, one per document (``_id`` the entry's id),
stay as they are and are read alongside: both shapes have ``audience`` and an
``_id`` no lower than any entry in them, so one query finds both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.journal import unsynced
from whatsease.storage.models import ActivityEntry, id_at, id_seconds

# Documents read per round trip while paging: each holds at least one entry
# for the reader, usually one or two.
READ_BATCH = 100


def batch_documents(entries: Sequence[ActivityEntry]) -> list[dict[str, Any]]:
    """``entries`` as stored: one document per second of their ids, in order.

    A document spans less than a second of ids, so the documents that may hold
    an entry older than some id X all have an ``_id`` below the second after
    X's (`ActivityRepo.list_for` pages with that bound).
    """
    by_second: dict[int, list[ActivityEntry]] = {}
    for entry in entries:
        by_second.setdefault(id_seconds(entry.entry_id), []).append(entry)
    docs = []
    for group in by_second.values():
        ids = [ObjectId(e.entry_id) for e in group]
        docs.append({"_id": max(ids), "first": min(ids),
                     "audience": sorted({p for e in group for p in e.audience}),
                     "entries": [e.to_doc() for e in group]})
    return docs


def stored_entries(doc: dict[str, Any]) -> list[ActivityEntry]:
    """The entries of a stored document of either shape."""
    if "entries" in doc:
        return [ActivityEntry.from_doc(e) for e in doc["entries"]]
    return [ActivityEntry.from_doc(doc)]


class ActivityRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert_many(self, entries: Sequence[ActivityEntry], *, sync: bool = True) -> None:
        """Insert in one command (`batch_documents`); ``sync=False`` acknowledges it before
        the journal sync (`whatsease.storage.journal`: a synced write follows)."""
        if entries:
            collection = self.collection if sync else unsynced(self.collection)
            await collection.insert_many(batch_documents(entries), ordered=False)

    async def list_for(self, user: str, *, before: str | None, limit: int,
                       kinds: Sequence[str] = ()) -> list[ActivityEntry]:
        """Entries whose audience includes ``user``, newest first, older than ``before``.

        Documents come newest ``_id`` first; the entries of one may interleave
        with another's (several processes write the log), so reading stops
        only once ``limit`` entries are found and the next document's newest
        entry is older than all of them.
        """
        if limit <= 0:
            return []
        filters: dict[str, Any] = {"audience": user}
        if before:
            # A document holding an entry older than ``before`` has all its
            # entries within one second of ids (`batch_documents`).
            filters["_id"] = {"$lt": ObjectId(id_at(id_seconds(before) + 1))}
        wanted = set(kinds)
        found: list[ActivityEntry] = []
        cursor = self.collection.find(filters).sort("_id", -1).batch_size(READ_BATCH)
        try:
            async for doc in cursor:
                if len(found) >= limit and str(doc["_id"]) < found[limit - 1].entry_id:
                    break
                found += [e for e in stored_entries(doc)
                          if user in e.audience and (not wanted or e.kind in wanted)
                          and (before is None or e.entry_id < before)]
                found.sort(key=lambda e: e.entry_id, reverse=True)
                del found[limit:]
        finally:
            await cursor.close()
        return found

    async def forget(self, user: str) -> None:
        """Take ``user`` out of every entry's audience (the account is being erased).

        Entries stay for the other people in them; a later account with the
        same email then sees none of the old one's history.
        """
        await self.collection.update_many(
            {"audience": user, "entries": {"$exists": True}},
            {"$pull": {"audience": user, "entries.$[].audience": user}})
        await self.collection.update_many({"audience": user}, {"$pull": {"audience": user}})
