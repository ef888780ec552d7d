"""The ``activity`` collection: entries, visible to their ``audience``, stored several per document.

Every message writes two entries (sent, then delivered), so each document and
index entry here is paid per message. A flush of the log therefore stores its
entries in documents of up to `DOCUMENT_ENTRIES`, each within one second of
ids, ``{_id, first, audience, entries}``: ``_id`` is the newest entry's id
and ``first`` the oldest's, and ``audience`` the union of the entries'
audiences, which the one index (``audience, _id``) holds. Eight entries of
eight messages then cost one document and one index entry per person in them
instead of eight documents and three entries each (bench/README.md,
"Database work per message").

Entries written by earlier versions, one per document (``_id`` the entry's id),
stay as they are and are read alongside: both shapes have ``audience`` and an
``_id`` no lower than any entry in them, so one query finds both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.journal import unsynced
from whatsease.storage.models import ActivityEntry, id_at, id_seconds

# Entries per document. A reader's page sorts every document of its window
# that holds one of its entries, whole: measured on the embedded database
# (40,000 entries among 400 people, a page of 50), 9 ms one entry per
# document, 17 ms eight, 34 ms sixteen, 74 ms forty-eight. Eight keep the
# write's saving (about two index entries and an eighth of a document per
# entry, against three and one) at twice the read.
DOCUMENT_ENTRIES = 8
# How far back each query of a page reaches, in seconds before the page's
# start, until one reaches back to the beginning: a page of recent activity
# reads only the last hour's documents.
WINDOWS = (3600, 6 * 3600, 2 * 86400, 14 * 86400, 90 * 86400)


def batch_documents(entries: Sequence[ActivityEntry]) -> list[dict[str, Any]]:
    """``entries`` as stored: documents of up to `DOCUMENT_ENTRIES` of one second of ids,
    in order.

    A document spans less than a second of ids, so the documents that may hold
    an entry older than some id X all have an ``_id`` below the second after
    X's (`ActivityRepo.list_for` pages with that bound).
    """
    by_second: dict[int, list[ActivityEntry]] = {}
    for entry in entries:
        by_second.setdefault(id_seconds(entry.entry_id), []).append(entry)
    groups = [group[i:i + DOCUMENT_ENTRIES] for group in by_second.values()
              for i in range(0, len(group), DOCUMENT_ENTRIES)]
    docs = []
    for group in groups:
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

        Documents are read newest ``_id`` first, a window of time at a time
        (`WINDOWS`): the embedded database sorts in memory every document a
        query finds, and a document holds a whole flush, so a query over the
        whole history of a busy person would sort all of it for one page.
        The entries of one document may interleave with another's (several
        processes write the log), so reading stops only once ``limit``
        entries are found and every document not read yet is older than all
        of them.
        """
        if limit <= 0:
            return []
        # A document holding an entry older than ``before`` has all its entries
        # within one second of ids (`batch_documents`).
        high = id_seconds(before) + 1 if before else int(time.time())
        wanted = set(kinds)
        found: list[ActivityEntry] = []
        # Without ``before`` the first window has no upper bound: an entry another
        # process stamped by a clock ahead of ours is still on the first page.
        upper = ObjectId(id_at(high)) if before else None
        for window in (*WINDOWS, None):
            lower = ObjectId(id_at(high - window)) if window is not None else None
            while True:
                span: dict[str, Any] = {}
                if upper is not None:
                    span["$lt"] = upper
                if lower is not None:
                    span["$gte"] = lower
                docs = await self.collection.find({"audience": user, "_id": span}).sort(
                    "_id", -1).limit(limit + 1).to_list()
                for doc in docs:
                    found += [e for e in stored_entries(doc)
                              if user in e.audience and (not wanted or e.kind in wanted)
                              and (before is None or e.entry_id < before)]
                found.sort(key=lambda e: e.entry_id, reverse=True)
                del found[limit:]
                if len(docs) <= limit:
                    break
                if len(found) >= limit and str(docs[-1]["_id"]) < found[-1].entry_id:
                    return found  # what is left of this window is older still
                upper = docs[-1]["_id"]  # more in this window: read on below the last
            # Every document not read yet has an _id (its newest entry) below ``lower``.
            if lower is None or (len(found) >= limit and found[-1].entry_id >= str(lower)):
                return found
            upper = lower
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
