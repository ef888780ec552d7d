"""The ``users`` collection: accounts keyed by lower-cased email."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from whatsease.storage.errors import Duplicate
from whatsease.storage.models import User


class UserRepo:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def insert(self, user: User) -> None:
        """Insert a new account; raise `Duplicate` if the email is taken."""
        try:
            await self.collection.insert_one(user.to_doc())
        except DuplicateKeyError:
            raise Duplicate(user.email) from None

    async def get(self, email: str) -> User | None:
        doc = await self.collection.find_one({"_id": email})
        return User.from_doc(doc) if doc else None

    async def get_many(self, emails: Iterable[str]) -> dict[str, User]:
        wanted = list(set(emails))
        if not wanted:
            return {}
        docs = await self.collection.find({"_id": {"$in": wanted}}).to_list()
        return {doc["_id"]: User.from_doc(doc) for doc in docs}

    async def search(self, query: str, *, limit: int, exclude: str | None = None,
                     org: str | None = None) -> list[User]:
        """Users whose email or name contains ``query`` (case-insensitive), by name."""
        pattern = {"$regex": re.escape(query.lower()), "$options": "i"}
        conditions: list[dict[str, Any]] = [{"$or": [{"_id": pattern}, {"name_lower": pattern}]}]
        if exclude:
            conditions.append({"_id": {"$ne": exclude}})
        if org is not None:
            conditions.append({"org": org})
        filters = {"$and": conditions}
        docs = await self.collection.find(filters).sort("name_lower", 1).limit(limit).to_list()
        return [User.from_doc(doc) for doc in docs]

    async def update(self, email: str, fields: dict[str, Any]) -> User | None:
        changes = dict(fields)
        if "name" in changes:
            changes["name_lower"] = changes["name"].lower()
        doc = await self.collection.find_one_and_update(
            {"_id": email}, {"$set": changes}, return_document=True)
        return User.from_doc(doc) if doc else None

    async def touch_last_seen(self, emails: Iterable[str], when: datetime) -> None:
        wanted = list(set(emails))
        if wanted:
            await self.collection.update_many({"_id": {"$in": wanted}},
                                              {"$set": {"last_seen": when}})

    async def delete(self, email: str) -> bool:
        result = await self.collection.delete_one({"_id": email})
        return result.deleted_count == 1

    async def in_org(self, org_id: str, roles: Iterable[str], *, limit: int) -> list[User]:
        """The org's users who have one of ``roles`` (at most ``limit``)."""
        docs = await self.collection.find({"org": org_id, "role": {"$in": list(roles)}}).limit(
            limit).to_list()
        return [User.from_doc(doc) for doc in docs]
