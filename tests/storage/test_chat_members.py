"""Who is in which chat: in `chat_members`, written when a chat starts and once per quarter hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import monitoring

from whatsease.services import Services
from whatsease.storage.conversations import ACTIVE_GRAIN, MIGRATIONS, active_slot
from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow

A, B, C, D = "a@example.com", "b@example.com", "c@example.com", "d@example.com"


def _message(sender: str, recipient: str, content: str = "hi") -> Message:
    return Message(message_id=new_id(), sender=sender, recipient=recipient, content=content,
                   timestamp=utcnow(), conversation_id=conversation_id(sender, recipient))


async def _indexes(services: Services, name: str) -> dict[str, dict[str, Any]]:
    return {i["name"]: dict(i) async for i in await services.store.db[name].list_indexes()}


async def test_summaries_carry_no_index_and_memberships_do(services: Services) -> None:
    # A summary is rewritten for every batch of messages: no index entry moves with it.
    await services.store.conversations.record_messages([_message(A, B)])
    assert set(await _indexes(services, "conversations")) == {"_id_"}
    members = await _indexes(services, "chat_members")
    assert members["members_1"]["key"] == {"members": 1}
    assert members["analytics_active_at"]["key"] == {"active_at": 1}


async def test_a_new_chat_gets_its_membership_once(services: Services) -> None:
    repo = services.store.conversations
    await repo.record_messages([_message(A, B, "first"), _message(B, A, "second")])
    await repo.record_messages([_message(A, B, "third")])
    docs = await repo.members.find().to_list()
    assert docs == [{"_id": conversation_id(A, B), "members": [A, B],
                     "active_at": active_slot(utcnow())}]
    listed = await repo.list_for(B, limit=5)
    assert [c.conversation_id for c in listed] == [conversation_id(A, B)]
    assert listed[0].last_message is not None and listed[0].last_message["content"] == "third"


async def test_the_chat_list_is_newest_first_and_limited(services: Services) -> None:
    repo = services.store.conversations
    await repo.record_messages([_message(A, B)])
    await repo.record_messages([_message(C, A)])
    assert [c.conversation_id for c in await repo.list_for(A, limit=5)] == [
        conversation_id(A, C), conversation_id(A, B)]
    assert [c.conversation_id for c in await repo.list_for(A, limit=1)] == [
        conversation_id(A, C)]
    peers = await repo.peers_of_many([A, B, "nobody@example.com"])
    assert peers == {A: {B, C}, B: {A}, "nobody@example.com": set()}


async def test_erasing_a_user_removes_their_chats_and_memberships(services: Services) -> None:
    repo = services.store.conversations
    await repo.record_messages([_message(A, B), _message(A, C)])
    await repo.delete_all_of(B)
    assert [c.conversation_id for c in await repo.list_for(A, limit=5)] == [
        conversation_id(A, C)]
    assert await repo.members.count_documents({"members": B}) == 0
    # A new chat between the same addresses starts afresh and is listed again.
    await repo.record_messages([_message(B, A, "again")])
    listed = await repo.list_for(A, limit=5)
    assert [c.conversation_id for c in listed] == [conversation_id(A, B), conversation_id(A, C)]
    assert listed[0].unread_for(A) == 1


async def test_start_up_backfills_memberships_of_older_summaries_once(
        services: Services) -> None:
    """Summaries written before memberships existed are listed again after a start-up,
    which is idempotent and reads them only until one pass has completed."""
    store = services.store
    await store.conversations.record_messages([_message(A, B)])
    older = {"_id": conversation_id(A, C), "members": [A, C], "updated_at": utcnow(),
             "unread": {"0": 0, "1": 1}, "last_message": None}
    await store.conversations.collection.insert_one(older)
    # A database an earlier version wrote: no backfill has ever completed on it.
    await store.db[MIGRATIONS].delete_many({})
    assert [c.conversation_id for c in await store.conversations.list_for(A, limit=5)] == [
        conversation_id(A, B)]
    await store.ensure_indexes()
    assert {c.conversation_id for c in await store.conversations.list_for(A, limit=5)} == {
        conversation_id(A, B), conversation_id(A, C)}
    # One written meanwhile by an instance of the earlier version (a rolling upgrade).
    rolling = {"_id": conversation_id(A, D), "members": [A, D], "updated_at": utcnow(),
               "unread": {"0": 0, "1": 1}, "last_message": None}
    await store.conversations.collection.insert_one(rolling)
    assert await store.conversations.backfill_members() == 1  # the next start-up
    assert await store.conversations.backfill_members() == 0  # and the one after adds none
    assert await store.conversations.members.count_documents({}) == 3
    # Once a pass has found none missing, later start-ups do not read the summaries again.
    later = {"_id": conversation_id(B, C), "members": [B, C], "updated_at": utcnow(),
             "unread": {"0": 0, "1": 0}, "last_message": None}
    await store.conversations.collection.insert_one(later)
    await store.ensure_indexes()
    assert await store.conversations.members.count_documents({}) == 3


async def test_start_up_drops_the_old_members_index_of_summaries(services: Services) -> None:
    collection = services.store.conversations.collection
    await collection.create_index([("members", 1), ("updated_at", -1)])  # as before
    await services.store.ensure_indexes()
    assert "members_1_updated_at_-1" not in await _indexes(services, "conversations")


class Updates(monitoring.CommandListener):
    """Counts the update commands sent to each collection."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.seen.append(str(event.command["update"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_a_quarter_hour_starts_on_the_quarter() -> None:
    moment = datetime(2026, 12, 5, 10, 44, 59, 999000, tzinfo=UTC)
    assert active_slot(moment) == datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    assert active_slot(moment + timedelta(milliseconds=1)) == datetime(2026, 12, 5, 10, 45,
                                                                      tzinfo=UTC)
    assert timedelta(minutes=15) == ACTIVE_GRAIN


async def test_a_membership_moves_once_per_quarter_hour_of_its_chat(mongo_uri: str) -> None:
    updates = Updates()
    store = Store(mongo_uri, f"members_{new_id()}", event_listeners=[updates])
    try:
        await store.ensure_indexes()
        repo = store.conversations
        start = active_slot(utcnow()) - timedelta(hours=1)

        def at(minutes: float) -> Message:
            m = _message(A, B)
            m.timestamp = start + timedelta(minutes=minutes)
            return m

        await repo.record_messages([at(1)])
        updates.seen.clear()
        for minute in (2, 5, 14):  # the same quarter hour: summaries only
            await repo.record_messages([at(minute)])
        assert updates.seen.count("chat_members") == 0
        assert updates.seen.count("conversations") == 3
        await repo.record_messages([at(16)])  # the next one
        assert updates.seen.count("chat_members") == 1
        doc = await repo.members.find_one({"_id": conversation_id(A, B)})
        assert doc is not None
        assert doc["active_at"].replace(tzinfo=UTC) == start + ACTIVE_GRAIN
        # Another process (or an older message) never moves it back.
        await repo.members.update_one({"_id": conversation_id(A, B)},
                                      {"$max": {"active_at": start}})
        doc = await repo.members.find_one({"_id": conversation_id(A, B)})
        assert doc is not None and doc["active_at"].replace(tzinfo=UTC) == start + ACTIVE_GRAIN
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_a_chat_erased_elsewhere_gets_its_membership_again(services: Services) -> None:
    """Another instance erased the account: this one still remembers the quarter hour
    it wrote, but the chat the next message creates is listed again."""
    repo = services.store.conversations
    await repo.record_messages([_message(A, B, "one")])
    # As another instance's erasure leaves it: both documents gone, this cache kept.
    await repo.collection.delete_many({})
    await repo.members.delete_many({})
    await repo.record_messages([_message(B, A, "two")])
    listed = await repo.list_for(A, limit=5)
    assert [c.conversation_id for c in listed] == [conversation_id(A, B)]
