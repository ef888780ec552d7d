"""Receipts beside the messages: a status moves in its own small document, read over the message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId

from whatsease.services import Services
from whatsease.storage.messages import MessageRepo
from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.timeutil import utcnow

A, B, C = "a@example.com", "b@example.com", "c@example.com"


def _message(sender: str, recipient: str, n: int = 0) -> Message:
    return Message(message_id=new_id(), sender=sender, recipient=recipient, content=f"m{n}",
                   timestamp=utcnow(), conversation_id=conversation_id(sender, recipient),
                   client_id=f"c{n}-{new_id()}")


async def _raw(repo: MessageRepo, message: Message) -> dict[str, Any]:
    doc = await repo.collection.find_one({"_id": ObjectId(message.message_id)})
    assert doc is not None
    return doc


async def test_a_receipt_leaves_the_message_document_alone_and_every_read_sees_it(
        services: Services) -> None:
    repo = services.store.messages
    [message] = await repo.insert_many([_message(A, B)])
    before = await _raw(repo, message)
    await repo.advance_statuses({message.message_id: "Delivered"}, utcnow())
    assert await _raw(repo, message) == before  # not rewritten: no index entry moved
    receipt = await repo.receipts.find_one({"_id": ObjectId(message.message_id)})
    assert receipt is not None and receipt["status"] == "Delivered"
    assert receipt["members"] == [A, B]
    got = await repo.get(message.message_id)
    assert got is not None and got.status == "Delivered" and got.has_receipt
    assert got.rev == str(receipt["rev"]) > message.message_id
    assert [m.status for m in await repo.get_many([message.message_id])] == ["Delivered"]
    history = await repo.history(message.conversation_id, before=None, limit=5)
    assert [m.status for m in history] == ["Delivered"]
    assert message.client_id is not None
    by_client = await repo.by_client_id(A, message.client_id)
    assert by_client is not None and by_client.status == "Delivered"
    # A retry of the send returns the stored message with its status.
    [again] = await repo.insert_many([Message(
        message_id=new_id(), sender=A, recipient=B, content="m0", timestamp=utcnow(),
        conversation_id=message.conversation_id, client_id=message.client_id)])
    assert again.message_id == message.message_id and again.status == "Delivered"

    await repo.advance_statuses({message.message_id: "Read"}, utcnow(),
                                receipted=[message.message_id])
    await repo.advance_statuses({message.message_id: "Delivered"}, utcnow())  # too late
    got = await repo.get(message.message_id)
    assert got is not None and got.status == "Read"
    assert await repo.receipts.count_documents({}) == 1


async def test_statuses_written_on_messages_by_earlier_versions_are_kept(
        services: Services) -> None:
    repo = services.store.messages
    [message] = await repo.insert_many([_message(A, B)])
    await repo.collection.update_one({"_id": ObjectId(message.message_id)},
                                     {"$set": {"status": "Read"}})
    await repo.advance_statuses({message.message_id: "Delivered"}, utcnow())
    got = await repo.get(message.message_id)
    assert got is not None and got.status == "Read"


async def test_sync_finds_receipts_in_the_order_of_changes_and_pages_through_them(
        services: Services) -> None:
    repo = services.store.messages
    mine = await repo.insert_many([_message(A, B, i) for i in range(10)])
    others = await repo.insert_many([_message(C, B, i) for i in range(5)])
    # Receipts in three batches (each shares a rev), one message edited after its
    # receipt: every message must come once, at its latest change.
    await repo.advance_statuses({m.message_id: "Delivered" for m in mine[:4]}, utcnow())
    await repo.advance_statuses({m.message_id: "Delivered" for m in others}, utcnow())
    edited = await repo.edit(mine[1].message_id, A, "changed", utcnow())
    assert edited is not None and edited.status == "Delivered"
    await repo.advance_statuses({m.message_id: "Read" for m in mine[2:7]}, utcnow(),
                                receipted=[m.message_id for m in mine[2:4]])
    everything = await repo.changed_since(A, None, limit=100)
    assert sorted(m.message_id for m in everything) == sorted(m.message_id for m in mine)
    keys = [(m.rev, m.message_id) for m in everything]
    assert keys == sorted(keys)
    assert [m.message_id for m in everything][-1] in {m.message_id for m in mine[2:7]}
    statuses = {m.message_id: m.status for m in everything}
    assert [statuses[m.message_id] for m in mine] == (
        ["Delivered"] * 2 + ["Read"] * 5 + ["Sent"] * 3)
    assert next(m for m in everything if m.message_id == mine[1].message_id).rev == edited.rev

    for size in (1, 2, 3, 4):
        seen: list[tuple[str, str]] = []
        after: str | None = None
        after_id: str | None = None
        while True:
            page = await repo.changed_since(A, after, limit=size, after_id=after_id)
            assert len(page) <= size
            if not page:
                break
            seen += [(m.rev, m.message_id) for m in page]
            after, after_id = page[-1].rev, page[-1].message_id
        assert seen == keys, size
    # From a position before the receipts, only what changed after it comes back.
    position = mine[9].message_id  # its rev: it never changed
    later = await repo.changed_since(A, position, limit=100, after_id=position)
    assert {m.message_id for m in later} == {m.message_id for m in mine[:7]}


async def test_the_catch_up_skips_messages_a_receipt_moved_on(services: Services) -> None:
    repo = services.store.messages
    sent = await repo.insert_many([_message(A, B, i) for i in range(12)])
    await repo.advance_statuses({m.message_id: "Delivered" for m in sent[:7]}, utcnow())
    low = ObjectId.from_datetime(utcnow() - timedelta(minutes=1))
    high = ObjectId.from_datetime(utcnow() + timedelta(minutes=1))
    found, complete = await repo.sent_between(str(low), str(high), limit=12)
    assert [mid for mid, _, _ in found] == [m.message_id for m in sent[7:]]
    assert complete
    # More in the range than the limit: what was read, and a flag saying so.
    found, complete = await repo.sent_between(str(low), str(high), limit=9)
    assert [mid for mid, _, _ in found] == [m.message_id for m in sent[7:9]]
    assert not complete
    # Only the messages ``keep`` accepts are checked for a receipt and returned.
    wanted = {sent[3].message_id, sent[8].message_id, sent[10].message_id}
    found, _ = await repo.sent_between(str(low), str(high), limit=100,
                                       keep=lambda mid, sender, recipient: mid in wanted)
    assert [mid for mid, _, _ in found] == [sent[8].message_id, sent[10].message_id]


async def test_the_catch_up_finds_a_sent_message_after_many_a_receipt_moved_on(
        services: Services) -> None:
    # An earlier version read the range in pages and gave up after eight pages
    # of messages that all had a receipt: the one still Sent after them was missed.
    repo = services.store.messages
    sent = await repo.insert_many([_message(A, B, i) for i in range(40)])
    await repo.advance_statuses({m.message_id: "Delivered" for m in sent[:39]}, utcnow())
    low = ObjectId.from_datetime(utcnow() - timedelta(minutes=1))
    high = ObjectId.from_datetime(utcnow() + timedelta(minutes=1))
    found, complete = await repo.sent_between(str(low), str(high), limit=1000)
    assert [mid for mid, _, _ in found] == [sent[39].message_id] and complete


async def test_erasing_an_account_erases_its_receipts(services: Services) -> None:
    repo = services.store.messages
    [ab] = await repo.insert_many([_message(A, B)])
    [cb] = await repo.insert_many([_message(C, B)])
    await repo.advance_statuses({ab.message_id: "Delivered", cb.message_id: "Read"}, utcnow())
    await repo.delete_all_of(A)
    assert [r["_id"] async for r in repo.receipts.find()] == [ObjectId(cb.message_id)]
