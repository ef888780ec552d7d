"""Small keyed documents for services that need one record per key (bot state, settings)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class DocumentRepo:
    """Get, put and delete whole documents by ``_id`` in a named collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def get(self, collection: str, key: str) -> dict[str, Any] | None:
        return await self.db[collection].find_one({"_id": key})

    async def put(self, collection: str, key: str, doc: dict[str, Any]) -> None:
        body = {k: v for k, v in doc.items() if k != "_id"}
        await self.db[collection].replace_one({"_id": key}, body, upsert=True)

    async def delete(self, collection: str, key: str) -> bool:
        result = await self.db[collection].delete_one({"_id": key})
        return result.deleted_count == 1

    async def insert_many(self, collection: str, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.db[collection].insert_many(docs, ordered=False)

    async def find(self, collection: str, filters: dict[str, Any], *, sort: str = "_id",
                   descending: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.db[collection].find(filters).sort(sort, -1 if descending else 1)
        return await cursor.limit(limit).to_list()

    async def delete_many(self, collection: str, filters: dict[str, Any]) -> int:
        result = await self.db[collection].delete_many(filters)
        return result.deleted_count
