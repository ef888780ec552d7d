"""Many single-document updates in one commit, against a real SecantusDB."""

from __future__ import annotations

import pytest
from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from whatsease.services import Services
from whatsease.storage.onecommit import OneCommit


async def test_a_batch_of_upserts_is_written_in_full(services: Services) -> None:
    collection = services.store.db["onecommit_full"]
    batched = OneCommit(collection)
    await batched.bulk_write([UpdateOne({"_id": f"c{i}"}, {"$inc": {"n": 1}}, upsert=True)
                              for i in range(5)] * 2, ordered=True)
    assert batched.transactions  # SecantusDB has them: the batch was one transaction
    docs = await collection.find({}).sort("_id", 1).to_list()
    assert docs == [{"_id": f"c{i}", "n": 2} for i in range(5)]


async def test_a_failing_update_leaves_the_whole_batch_unwritten(services: Services) -> None:
    collection = services.store.db["onecommit_atomic"]
    await collection.insert_one({"_id": "text", "n": "not a number"})
    batched = OneCommit(collection)
    with pytest.raises(PyMongoError):
        await batched.bulk_write([
            UpdateOne({"_id": "first"}, {"$set": {"n": 1}}, upsert=True),
            UpdateOne({"_id": "text"}, {"$inc": {"n": 1}}),  # $inc of a string: refused
        ], ordered=True)
    # One commit or none: the upsert before the refused update is not there either
    # (a plain ordered bulk write would have kept it).
    assert await collection.find_one({"_id": "first"}) is None
    assert await collection.find_one({"_id": "text"}) == {"_id": "text", "n": "not a number"}


async def test_an_empty_or_single_batch_needs_no_transaction(services: Services) -> None:
    collection = services.store.db["onecommit_small"]
    batched = OneCommit(collection)
    await batched.bulk_write([], ordered=True)
    await batched.bulk_write([UpdateOne({"_id": "one"}, {"$set": {"n": 1}}, upsert=True)],
                             ordered=False)
    assert await collection.find_one({"_id": "one"}) == {"_id": "one", "n": 1}
