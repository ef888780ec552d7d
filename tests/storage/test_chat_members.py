"""Who is in which chat: written once per chat in `chat_members`, not indexed on the summaries."""

from __future__ import annotations

from typing import Any

from whatsease.services import Services
from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.timeutil import utcnow

A, B, C = "a@example.com", "b@example.com", "c@example.com"


def _message(sender: str, recipient: str, content: str = "hi") -> Message:
    return Message(message_id=new_id(), sender=sender, recipient=recipient, content=content,
                   timestamp=utcnow(), conversation_id=conversation_id(sender, recipient))


async def _indexes(services: Services, name: str) -> dict[str, dict[str, Any]]:
    return {i["name"]: dict(i) async for i in await services.store.db[name].list_indexes()}


async def test_summaries_carry_no_members_index_and_memberships_do(services: Services) -> None:
    assert set(await _indexes(services, "conversations")) == {"_id_", "analytics_updated_at"}
    members = await _indexes(services, "chat_members")
    assert members["members_1"]["key"] == {"members": 1}


async def test_a_new_chat_gets_its_membership_once(services: Services) -> None:
    repo = services.store.conversations
    await repo.record_messages([_message(A, B, "first"), _message(B, A, "second")])
    await repo.record_messages([_message(A, B, "third")])
    docs = await repo.members.find().to_list()
    assert docs == [{"_id": conversation_id(A, B), "members": [A, B]}]
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
    """Summaries written before memberships existed (or by a process that died before
    writing one) are listed again after a start-up, which is idempotent."""
    store = services.store
    await store.conversations.record_messages([_message(A, B)])
    older = {"_id": conversation_id(A, C), "members": [A, C], "updated_at": utcnow(),
             "unread": {"0": 0, "1": 1}, "last_message": None}
    await store.conversations.collection.insert_one(older)
    assert [c.conversation_id for c in await store.conversations.list_for(A, limit=5)] == [
        conversation_id(A, B)]
    await store.ensure_indexes()
    assert {c.conversation_id for c in await store.conversations.list_for(A, limit=5)} == {
        conversation_id(A, B), conversation_id(A, C)}
    assert await store.conversations.backfill_members() == 0  # a second start-up adds none
    assert await store.conversations.members.count_documents({}) == 2


async def test_start_up_drops_the_old_members_index_of_summaries(services: Services) -> None:
    collection = services.store.conversations.collection
    await collection.create_index([("members", 1), ("updated_at", -1)])  # as before
    await services.store.ensure_indexes()
    assert "members_1_updated_at_-1" not in await _indexes(services, "conversations")
