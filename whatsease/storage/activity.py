"""The ``activity`` collection: one entry per action, visible to its ``audience``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.journal import unsynced
from whatsease.storage.models import ActivityEntry


class ActivityRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert_many(self, entries: Sequence[ActivityEntry], *, sync: bool = True) -> None:
        """Insert in one command; ``sync=False`` acknowledges it before the
        journal sync (`whatsease.storage.journal`: a synced write follows)."""
        if entries:
            collection = self.collection if sync else unsynced(self.collection)
            await collection.insert_many([e.to_doc() for e in entries], ordered=False)

    async def list_for(self, user: str, *, before: str | None, limit: int,
                       kinds: Sequence[str] = ()) -> list[ActivityEntry]:
        """Entries whose audience includes ``user``, newest first."""
        filters: dict[str, Any] = {"audience": user}
        if before:
            filters["_id"] = {"$lt": ObjectId(before)}
        if kinds:
            filters["kind"] = {"$in": list(kinds)}
        docs = await self.collection.find(filters).sort("_id", -1).limit(limit).to_list()
        return [ActivityEntry.from_doc(doc) for doc in docs]

    async def forget(self, user: str) -> None:
        """Take ``user`` out of every entry's audience (the account is being erased).

        Entries stay for the other people in them; a later account with the
        same email then sees none of the old one's history.
        """
        await self.collection.update_many({"audience": user}, {"$pull": {"audience": user}})
