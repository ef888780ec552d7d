"""Receipts for messages this process stored lately: decided without a read, and,
when another instance sharing the database moved the message first, neither moved
back nor announced twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bson import ObjectId

from tests.commands import Commands, counted_services
from whatsease.app import build_services
from whatsease.services import Services
from whatsease.storage.models import User

A, B = "a@example.com", "b@example.com"
READS = ("find", "aggregate", "getMore", "count")


@pytest.fixture
async def counted(mongo_uri: str) -> AsyncIterator[tuple[Services, Commands]]:
    async with counted_services(mongo_uri) as (built, commands):
        for email in (A, B):
            await built.store.users.insert(User(email=email, name=email))
        yield built, commands


@pytest.fixture
async def other(counted: tuple[Services, Commands], mongo_uri: str,
                ) -> AsyncIterator[Services]:
    """A second instance on the same database (as in a cluster)."""
    built = await build_services(counted[0].config, mongo_uri)
    built.messaging.share_database()
    counted[0].messaging.share_database()
    yield built
    await built.messaging.drain()
    await built.activity.drain()
    await built.store.close()


async def _events(services: Services, *others: Services) -> list[tuple[str, str | None]]:
    """Message events in the activity log, oldest first: (kind, message id)."""
    for s in others:
        await s.activity.written()
    entries = await services.activity.list_for(B, before=None, limit=100)
    return [(e.kind, e.message_id) for e in reversed(entries)
            if e.kind in ("message.delivered", "message.read")]


async def _receipt(services: Services, message_id: str) -> str | None:
    doc = await services.store.messages.receipts.find_one({"_id": ObjectId(message_id)})
    return None if doc is None else str(doc["status"])


async def test_a_delivered_receipt_for_a_message_stored_here_reads_nothing(
        counted: tuple[Services, Commands]) -> None:
    services, commands = counted
    messaging = services.messaging
    sent = await messaging.send(A, B, "hello")
    await messaging.summaries_written()
    commands.seen.clear()
    moved = await messaging.mark(B, [sent.message_id], "Delivered")
    assert [(m.message_id, m.status) for m in moved] == [(sent.message_id, "Delivered")]
    assert [c for c in commands.seen if c[0] in READS] == []
    assert [c[:2] for c in commands.seen] == [("insert", "message_receipts")]
    stored = await services.store.messages.get(sent.message_id)
    assert stored is not None and stored.status == "Delivered"
    # Idempotent: a second receipt (read now: the record let go of it) moves nothing.
    assert await messaging.mark(B, [sent.message_id], "Delivered") == []
    assert await _events(services) == [("message.delivered", sent.message_id)]


async def test_only_the_recipient_moves_a_recorded_message_and_rest_returns_its_content(
        counted: tuple[Services, Commands]) -> None:
    services, _ = counted
    messaging = services.messaging
    sent = await messaging.send(A, B, "hello")
    assert await messaging.mark(A, [sent.message_id], "Delivered") == []  # the sender
    assert await _receipt(services, sent.message_id) is None
    assert sent.message_id in services.store.messages.recent.find([sent.message_id])
    moved = await messaging.set_status(B, sent.message_id, "Read")
    assert moved.status == "Read" and moved.content == "hello"
    assert await _events(services) == [("message.delivered", sent.message_id),
                                       ("message.read", sent.message_id)]


async def test_a_message_deleted_here_gets_no_receipt_from_the_record(
        counted: tuple[Services, Commands]) -> None:
    services, _ = counted
    messaging = services.messaging
    sent = await messaging.send(A, B, "oops")
    await messaging.delete(A, sent.message_id)
    assert await messaging.mark(B, [sent.message_id], "Delivered") == []
    assert await _receipt(services, sent.message_id) is None


async def test_a_message_another_instance_moved_on_is_neither_moved_back_nor_announced_twice(
        counted: tuple[Services, Commands], other: Services) -> None:
    services, _ = counted
    here, there = services.messaging, other.messaging
    first = await here.send(A, B, "one")
    second = await here.send(A, B, "two")
    third = await here.send(A, B, "three")
    await here.summaries_written()
    # The other instance takes the receipts first (it did not store these messages).
    assert len(await there.mark(B, [first.message_id, second.message_id], "Delivered")) == 2
    assert len(await there.mark(B, [third.message_id], "Read")) == 1
    # This one still has them in its record as Sent without a receipt.
    assert len(services.store.messages.recent.find(
        [first.message_id, second.message_id, third.message_id])) == 3

    assert await here.mark(B, [first.message_id], "Delivered") == []
    moved = await here.mark(B, [second.message_id], "Read")  # decided again from a read
    assert [(m.message_id, m.status) for m in moved] == [(second.message_id, "Read")]
    assert await here.mark(B, [third.message_id], "Delivered") == []

    assert await _receipt(services, first.message_id) == "Delivered"
    assert await _receipt(services, second.message_id) == "Read"
    assert await _receipt(services, third.message_id) == "Read"
    assert await _events(services, other) == [
        ("message.delivered", first.message_id), ("message.delivered", second.message_id),
        ("message.delivered", third.message_id), ("message.read", third.message_id),
        ("message.read", second.message_id)]
    # Two of three read, each counted once: one still unread.
    [chat] = await here.chats(B)
    assert chat["unread_count"] == 1
