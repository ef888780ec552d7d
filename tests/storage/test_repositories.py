"""The repositories against a real SecantusDB: indexes, uniqueness, rotation, statuses, counters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from whatsease.services import Services
from whatsease.storage.conversations import summary_updates
from whatsease.storage.errors import Duplicate
from whatsease.storage.models import ActivityEntry, Message, Session, User, conversation_id, new_id
from whatsease.storage.store import INDEXES
from whatsease.timeutil import utcnow


def _message(sender: str, recipient: str, content: str = "hi", *,
             client_id: str | None = None) -> Message:
    return Message(message_id=new_id(), sender=sender, recipient=recipient, content=content,
                   timestamp=utcnow(), conversation_id=conversation_id(sender, recipient),
                   client_id=client_id)


async def test_indexes_are_created_idempotently(services: Services) -> None:
    store = services.store
    await store.ensure_indexes()
    await store.ensure_indexes()  # a second start-up changes nothing and does not fail
    for collection, models in INDEXES.items():
        if not models:
            continue
        existing = {i["name"]: i async for i in await store.db[collection].list_indexes()}
        for model in models:
            name = model.document["name"]
            assert name in existing, (collection, name)
    existing = {i["name"]: i async for i in await store.db["messages"].list_indexes()}
    by_client = existing["sender_1_client_id_1"]
    assert by_client.get("unique") is True
    assert by_client.get("partialFilterExpression") == {"client_id": {"$type": "string"}}
    sessions = {i["name"]: i async for i in await store.db["sessions"].list_indexes()}
    assert sessions["expires_at_1"].get("expireAfterSeconds") == 0


async def test_retired_indexes_are_dropped_at_start_up(services: Services) -> None:
    store = services.store
    activity = store.db["activity"]
    await activity.create_index([("actor", 1), ("_id", -1)])  # as an older version made it
    await activity.create_index([("time", -1)])
    await store.ensure_indexes()
    names = {i["name"] async for i in await activity.list_indexes()}
    assert names == {"_id_", "audience_1__id_-1"}


async def test_users_are_unique_by_email_and_searched_literally(services: Services) -> None:
    users = services.store.users
    await users.insert(User(email="ann@example.com", name="Ann (a.k.a. A+)"))
    with pytest.raises(Duplicate):
        await users.insert(User(email="ann@example.com", name="Other"))
    assert (await users.get("ann@example.com")).name == "Ann (a.k.a. A+)"  # type: ignore[union-attr]
    assert [u.email for u in await users.search("(A.K.A. a+)", limit=5)] == ["ann@example.com"]
    assert await users.search("a.k.a.*", limit=5) == []
    assert await users.search("ann", limit=5, exclude="ann@example.com") == []
    updated = await users.update("ann@example.com", {"name": "Annie"})
    assert updated is not None and updated.name == "Annie"
    assert [u.email for u in await users.search("ANNIE", limit=5)] == ["ann@example.com"]
    assert await users.delete("ann@example.com") is True
    assert await users.delete("ann@example.com") is False


async def test_refresh_rotation_remembers_old_hashes(services: Services) -> None:
    sessions = services.store.sessions
    now = utcnow()
    sid = new_id()
    await sessions.insert(Session(session_id=sid, user="s@example.com", refresh_hash="h0",
                                  created_at=now, last_used=now,
                                  expires_at=now + timedelta(hours=1)))
    later = now + timedelta(hours=2)
    assert await sessions.rotate(sid, "wrong", "h1", now, later) is None
    rotated = await sessions.rotate(sid, "h0", "h1", now, later)
    assert rotated is not None and rotated.refresh_hash == "h1"
    assert await sessions.rotate(sid, "h0", "h2", now, later) is None  # already used
    assert await sessions.was_rotated(sid, "h0") is True
    assert await sessions.was_rotated(sid, "h1") is False
    assert await sessions.rotate("not-an-id", "h1", "h2", now, later) is None
    # Past its expiry a session neither rotates nor lists.
    assert await sessions.rotate(sid, "h1", "h2", later + timedelta(seconds=1), later) is None
    assert [s.session_id for s in await sessions.list_for("s@example.com", now)] == [sid]
    assert await sessions.list_for("s@example.com", later + timedelta(seconds=1)) == []
    assert await sessions.revoke(sid, user="other@example.com") is False
    assert await sessions.revoke(sid, user="s@example.com") is True
    assert await sessions.revoke(sid) is False
    assert await sessions.rotate(sid, "h1", "h2", now, later) is None
    assert await sessions.list_for("s@example.com", now) == []
    assert await sessions.delete_all_of("s@example.com") == 1
    assert await sessions.get(sid) is None


async def test_insert_many_returns_the_stored_message_for_a_repeated_client_id(
        services: Services) -> None:
    messages = services.store.messages
    first = _message("a@example.com", "b@example.com", "one", client_id="c1")
    [stored] = await messages.insert_many([first])
    assert stored.message_id == first.message_id
    retry = _message("a@example.com", "b@example.com", "one", client_id="c1")
    other = _message("a@example.com", "b@example.com", "two", client_id="c2")
    result = await messages.insert_many([retry, other])
    assert result[0].message_id == first.message_id and result[0].extra.get("duplicate")
    assert result[1].message_id == other.message_id
    # Another sender may use the same client id; no client id at all is never a duplicate.
    theirs = _message("b@example.com", "a@example.com", "three", client_id="c1")
    plain = [_message("a@example.com", "b@example.com") for _ in range(2)]
    result = await messages.insert_many([theirs, *plain])
    assert [m.message_id for m in result] == [theirs.message_id, *(m.message_id for m in plain)]
    history = await messages.history(conversation_id("a@example.com", "b@example.com"),
                                     before=None, limit=10)
    assert len(history) == 5
    assert [m.message_id for m in history] == sorted((m.message_id for m in history),
                                                     reverse=True)
    older = await messages.history(history[0].conversation_id, before=history[1].message_id,
                                   limit=10)
    assert [m.message_id for m in older] == [m.message_id for m in history[2:]]


async def test_statuses_never_move_backwards_even_when_asked(services: Services) -> None:
    messages = services.store.messages
    message = _message("a@example.com", "b@example.com")
    await messages.insert_many([message])
    now = utcnow()
    await messages.advance_statuses({message.message_id: "Read"}, now)
    await messages.advance_statuses({message.message_id: "Delivered"}, now)
    stored = await messages.get(message.message_id)
    assert stored is not None and stored.status == "Read"


async def test_conversation_counters_follow_sends_and_reads(services: Services) -> None:
    conversations = services.store.conversations
    sent = [_message("a@example.com", "b@example.com", f"m{i}") for i in range(3)]
    await conversations.record_messages(sent)
    conv = await conversations.get(sent[0].conversation_id)
    assert conv is not None
    assert conv.unread_for("b@example.com") == 3 and conv.unread_for("a@example.com") == 0
    assert conv.last_message is not None and conv.last_message["content"] == "m2"
    await conversations.bump_statuses([(conv.conversation_id, sent[2].message_id, "Read")],
                                      {(conv.conversation_id, "b@example.com"): 2})
    conv = await conversations.get(sent[0].conversation_id)
    assert conv is not None and conv.unread_for("b@example.com") == 1
    assert conv.last_message is not None and conv.last_message["status"] == "Read"
    assert [c.conversation_id for c in await conversations.list_for("a@example.com", limit=5)] \
        == [conv.conversation_id]
    await conversations.delete_all_of("b@example.com")
    assert await conversations.list_for("a@example.com", limit=5) == []


async def test_a_batch_updates_each_conversation_once_as_one_at_a_time_would(
        services: Services) -> None:
    conversations = services.store.conversations
    ab = [_message("a@example.com", "b@example.com", "ab1"),
          _message("b@example.com", "a@example.com", "ba1"),
          _message("a@example.com", "b@example.com", "ab2")]
    cd = [_message("c@example.com", "d@example.com", "cd1")]
    batch = [ab[0], cd[0], ab[1], ab[2]]
    # One statement per conversation, not per message.
    assert len(summary_updates(batch)) == 2
    await conversations.record_messages(batch)
    # The same messages one at a time leave the same summaries and counters.
    for m in batch:
        await services.store.db["conversations_one_by_one"].bulk_write(summary_updates([m]))
    for conv_id in (ab[0].conversation_id, cd[0].conversation_id):
        batched = await conversations.collection.find_one({"_id": conv_id})
        one_by_one = await services.store.db["conversations_one_by_one"].find_one(
            {"_id": conv_id})
        assert batched == one_by_one
    conv = await conversations.get(ab[0].conversation_id)
    assert conv is not None and conv.last_message is not None
    assert conv.last_message["content"] == "ab2"
    assert conv.unread_for("b@example.com") == 2 and conv.unread_for("a@example.com") == 1


async def test_forgetting_a_user_hides_their_activity_from_a_namesake(services: Services) -> None:
    activity = services.store.activity
    now = utcnow()
    shared = ActivityEntry(kind="message.sent", actor="a@example.com", text="a to b", time=now,
                           target="b@example.com", audience=["a@example.com", "b@example.com"])
    own = ActivityEntry(kind="user.login", actor="a@example.com", text="a in", time=now,
                        audience=["a@example.com"])
    await activity.insert_many([shared, own])
    await activity.forget("a@example.com")
    assert await activity.list_for("a@example.com", before=None, limit=10) == []
    kept = await activity.list_for("b@example.com", before=None, limit=10)
    assert [e.entry_id for e in kept] == [shared.entry_id]
