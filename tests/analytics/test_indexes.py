"""Analytics adds no index to the collections every message is written to."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from whatsease.services import Services
from whatsease.storage.analytics import ANALYTICS_INDEXES, HOT_COLLECTIONS, ensure_indexes
from whatsease.storage.store import INDEXES
from whatsease.storage.support import MESSAGES, SUPPORT_INDEXES


def _names(models: list[IndexModel]) -> set[str]:
    return {str(model.document["name"]) for model in models}


async def _present(services: Services, collection: str) -> set[str]:
    cursor = await services.store.db[collection].list_indexes()
    return {index["name"] async for index in cursor}


async def test_the_hot_collections_hold_only_the_chat_paths_indexes(services: Services) -> None:
    # Each index on these costs every message an entry (bench/README.md): the
    # sets are exactly what the messenger and support read by.
    await services.store.ensure_indexes(extra=SUPPORT_INDEXES)
    assert await _present(services, "messages") == {"_id_"} | _names(INDEXES["messages"]) == {
        "_id_", "conversation_id_1__id_-1", "members_1_rev_1", "sender_1_client_id_1"}
    assert await _present(services, MESSAGES) == {"_id_"} | _names(SUPPORT_INDEXES[MESSAGES])
    assert await _present(services, "activity") == {"_id_"} | _names(INDEXES["activity"])
    assert await _present(services, "message_receipts") == {"_id_", "members_1_rev_1"}
    assert not set(ANALYTICS_INDEXES) & set(HOT_COLLECTIONS)


async def test_start_up_drops_the_timestamp_indexes_earlier_versions_made(
        services: Services) -> None:
    db = services.store.db
    await db["messages"].create_indexes([IndexModel([("timestamp", ASCENDING)],
                                                    name="analytics_timestamp")])
    await db[MESSAGES].create_indexes([
        IndexModel([("timestamp", ASCENDING)], name="analytics_timestamp"),
        IndexModel([("org", ASCENDING), ("timestamp", ASCENDING)],
                   name="analytics_org_timestamp")])
    await ensure_indexes(db)
    assert "analytics_timestamp" not in await _present(services, "messages")
    assert not {"analytics_timestamp", "analytics_org_timestamp"} & await _present(services,
                                                                                   MESSAGES)
