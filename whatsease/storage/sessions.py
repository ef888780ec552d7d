"""The ``sessions`` collection: one document per login, holding the hashed refresh token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from whatsease.storage.models import Session, is_object_id

# Rotated refresh-token hashes remembered per session, to recognise a replay.
OLD_HASHES_KEPT = 20


class SessionRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert(self, session: Session) -> None:
        await self.collection.insert_one(session.to_doc())

    async def get(self, session_id: str) -> Session | None:
        if not is_object_id(session_id):
            return None
        doc = await self.collection.find_one({"_id": ObjectId(session_id)})
        return Session.from_doc(doc) if doc else None

    async def get_many(self, session_ids: list[str]) -> dict[str, Session]:
        """Sessions by id, in one query; unknown ids are simply absent."""
        ids = [ObjectId(s) for s in set(session_ids) if is_object_id(s)]
        if not ids:
            return {}
        docs = await self.collection.find({"_id": {"$in": ids}}).to_list()
        return {str(doc["_id"]): Session.from_doc(doc) for doc in docs}

    async def rotate(self, session_id: str, old_hash: str, new_hash: str, now: datetime,
                     expires_at: datetime) -> Session | None:
        """Swap the refresh hash if ``old_hash`` is current; None if it is not."""
        if not is_object_id(session_id):
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": ObjectId(session_id), "refresh_hash": old_hash, "revoked": False,
             "expires_at": {"$gt": now}},
            {"$set": {"refresh_hash": new_hash, "last_used": now, "expires_at": expires_at},
             "$push": {"old_hashes": {"$each": [old_hash], "$slice": -OLD_HASHES_KEPT}}},
            return_document=True)
        return Session.from_doc(doc) if doc else None

    async def was_rotated(self, session_id: str, refresh_hash: str) -> bool:
        """True if ``refresh_hash`` is one this session used before (a replay)."""
        if not is_object_id(session_id):
            return False
        doc = await self.collection.find_one(
            {"_id": ObjectId(session_id), "old_hashes": refresh_hash}, {"_id": 1})
        return doc is not None

    async def list_for(self, user: str, now: datetime) -> list[Session]:
        docs = await self.collection.find(
            {"user": user, "revoked": False, "expires_at": {"$gt": now}}
        ).sort("created_at", -1).limit(200).to_list()
        return [Session.from_doc(doc) for doc in docs]

    async def revoke(self, session_id: str, user: str | None = None) -> bool:
        if not is_object_id(session_id):
            return False
        filters: dict[str, Any] = {"_id": ObjectId(session_id), "revoked": False}
        if user is not None:
            filters["user"] = user
        result = await self.collection.update_one(filters, {"$set": {"revoked": True}})
        return result.modified_count == 1

    async def revoke_all(self, user: str) -> list[str]:
        docs = await self.collection.find({"user": user, "revoked": False}, {"_id": 1}).to_list()
        await self.collection.update_many({"user": user}, {"$set": {"revoked": True}})
        return [str(doc["_id"]) for doc in docs]

    async def delete_all_of(self, user: str) -> int:
        """Remove every session of ``user`` (the account is being erased)."""
        result = await self.collection.delete_many({"user": user})
        return result.deleted_count
