"""Inserting a batch in one round trip while telling which documents were already there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

# MongoDB's error code for a unique index violation.
DUPLICATE_KEY = 11000


async def insert_all(collection: AsyncCollection[dict[str, Any]],
                     docs: Sequence[dict[str, Any]]) -> set[int]:
    """Insert ``docs`` unordered in one command; the indexes of those refused as duplicates.

    Any other write error is raised (`BulkWriteError`).
    """
    duplicates: set[int] = set()
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != DUPLICATE_KEY:
                raise
            duplicates.add(int(error["index"]))
    return duplicates
