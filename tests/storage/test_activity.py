"""The activity log's storage: a flush is one document per second of ids, read entry by entry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId

from whatsease.services import Services
from whatsease.storage.activity import DOCUMENT_ENTRIES, batch_documents
from whatsease.storage.models import ActivityEntry, id_at, id_seconds
from whatsease.timeutil import utcnow

A, B, C = "a@example.com", "b@example.com", "c@example.com"


def _entry(kind: str, actor: str, *audience: str, seconds: int | None = None,
           n: int = 0) -> ActivityEntry:
    entry = ActivityEntry(kind=kind, actor=actor, text=f"{kind} {n}", time=utcnow(),
                          audience=sorted({actor, *audience}))
    if seconds is not None:  # an id of a chosen second (ids of one process are unique anyway)
        entry.entry_id = id_at(seconds)[:16] + f"{n:08x}"
    return entry


async def test_a_flush_is_one_document_per_second_with_the_union_of_audiences(
        services: Services) -> None:
    repo = services.store.activity
    now = int(utcnow().timestamp())
    first = [_entry("message.sent", A, B, seconds=now, n=i) for i in range(3)]
    later = [_entry("message.delivered", C, A, seconds=now + 1, n=i) for i in range(2)]
    await repo.insert_many(first + later)
    docs = await repo.collection.find().sort("_id", 1).to_list()
    assert len(docs) == 2
    assert docs[0]["audience"] == [A, B] and docs[1]["audience"] == [A, C]
    assert docs[0]["_id"] == ObjectId(first[-1].entry_id)
    assert docs[0]["first"] == ObjectId(first[0].entry_id)
    assert [str(e["_id"]) for e in docs[1]["entries"]] == [e.entry_id for e in later]


def test_documents_never_span_two_seconds_of_ids_nor_hold_more_than_a_few() -> None:
    entries = [_entry("user.login", A, seconds=100 + i // 3, n=i) for i in range(9)]
    docs = batch_documents(entries)
    assert len(docs) == 3
    for doc in docs:
        assert {id_seconds(str(e["_id"])) for e in doc["entries"]} == {
            id_seconds(str(doc["_id"]))}
    # A reader's page sorts whole documents: a busy second is cut into several.
    busy = [_entry("user.login", A, seconds=200, n=i) for i in range(2 * DOCUMENT_ENTRIES + 1)]
    sizes = [len(d["entries"]) for d in batch_documents(busy)]
    assert sizes == [DOCUMENT_ENTRIES, DOCUMENT_ENTRIES, 1]
    assert [str(e["_id"]) for d in batch_documents(busy) for e in d["entries"]] == [
        e.entry_id for e in busy]


async def test_a_reader_sees_only_the_entries_whose_audience_holds_them(
        services: Services) -> None:
    repo = services.store.activity
    mine = _entry("message.sent", A, B)
    theirs = _entry("message.sent", C, B)  # the same document: B is in both
    await repo.insert_many([mine, theirs])
    assert [e.entry_id for e in await repo.list_for(A, before=None, limit=10)] == [mine.entry_id]
    assert [e.entry_id for e in await repo.list_for(C, before=None, limit=10)] == [
        theirs.entry_id]
    assert {e.entry_id for e in await repo.list_for(B, before=None, limit=10)} == {
        mine.entry_id, theirs.entry_id}


async def test_pages_are_newest_first_across_documents_and_inside_them(
        services: Services) -> None:
    repo = services.store.activity
    now = int(utcnow().timestamp()) - 10
    # Three flushes over four seconds, and entries of other people in between.
    written: list[ActivityEntry] = []
    n = 0
    for second in range(4):
        batch = []
        for _ in range(5):
            n += 1
            batch.append(_entry("message.sent", A, B, seconds=now + second, n=n))
            batch.append(_entry("message.sent", C, B, seconds=now + second, n=n + 1000))
        written += batch
        await repo.insert_many(batch)
    expected = sorted((e.entry_id for e in written if A in e.audience), reverse=True)
    pages: list[str] = []
    before = None
    while True:
        page = await repo.list_for(A, before=before, limit=3)
        pages += [e.entry_id for e in page]
        if len(page) < 3:
            break
        before = page[-1].entry_id
    assert pages == expected


async def test_documents_whose_entries_interleave_are_merged_in_id_order(
        services: Services) -> None:
    """Two processes flush the same second: their documents' id ranges overlap."""
    repo = services.store.activity
    now = int(utcnow().timestamp()) - 5
    one = [_entry("user.login", A, seconds=now, n=i) for i in (1, 3, 5, 7)]
    two = [_entry("user.login", A, seconds=now, n=i) for i in (2, 4, 6)]
    await repo.insert_many(one)
    await repo.insert_many(two)
    expected = sorted((e.entry_id for e in one + two), reverse=True)
    assert [e.entry_id for e in await repo.list_for(A, before=None, limit=3)] == expected[:3]
    assert [e.entry_id for e in await repo.list_for(A, before=expected[2], limit=10)] == \
        expected[3:]


async def test_kinds_filter_the_entries_not_the_documents(services: Services) -> None:
    repo = services.store.activity
    entries = [_entry("message.sent" if i % 2 else "user.login", A, B, n=i) for i in range(8)]
    await repo.insert_many(entries)
    sent = await repo.list_for(A, before=None, limit=10, kinds=["message.sent"])
    assert [e.entry_id for e in sent] == sorted(
        (e.entry_id for e in entries if e.kind == "message.sent"), reverse=True)


async def test_entries_of_the_one_per_document_shape_are_read_alongside(
        services: Services) -> None:
    """Entries written before batches were stored one per document stay readable."""
    repo = services.store.activity
    old = _entry("user.login", A, n=1)
    old.time = utcnow() - timedelta(minutes=1)
    await repo.collection.insert_one(old.to_doc())
    new = _entry("message.sent", A, B, n=2)
    await repo.insert_many([new])
    listed = await repo.list_for(A, before=None, limit=10)
    assert [e.entry_id for e in listed] == sorted([old.entry_id, new.entry_id], reverse=True)
    assert listed[-1].kind == "user.login" and listed[-1].text == old.text


async def test_forgetting_a_user_takes_them_out_of_both_shapes(services: Services) -> None:
    repo = services.store.activity
    old = _entry("message.sent", A, B, n=1)
    await repo.collection.insert_one(old.to_doc())
    shared, own = _entry("message.sent", A, B, n=2), _entry("user.login", A, n=3)
    await repo.insert_many([shared, own])
    await repo.forget(A)
    assert await repo.list_for(A, before=None, limit=10) == []
    kept = await repo.list_for(B, before=None, limit=10)
    assert sorted(e.entry_id for e in kept) == sorted([old.entry_id, shared.entry_id])
    assert all(A not in e.audience for e in kept)
    docs: list[dict[str, Any]] = await repo.collection.find().to_list()
    assert all(A not in d["audience"] for d in docs)


async def test_a_page_reaches_back_past_quiet_stretches_of_history(services: Services) -> None:
    """Pages read a window of time at a time: older entries are found all the same."""
    repo = services.store.activity
    now = int(utcnow().timestamp())
    ages = [0, 30, 2 * 3600, 3 * 86400, 400 * 86400]  # seconds ago
    entries = [_entry("user.login", A, seconds=now - age, n=i) for i, age in enumerate(ages)]
    for entry in entries:
        await repo.insert_many([entry])
    await repo.insert_many([_entry("user.login", B, seconds=now - 5, n=99)])
    newest_first = [e.entry_id for e in entries]
    assert [e.entry_id for e in await repo.list_for(A, before=None, limit=10)] == newest_first
    assert [e.entry_id for e in await repo.list_for(A, before=None, limit=3)] == \
        newest_first[:3]
    assert [e.entry_id for e in await repo.list_for(A, before=newest_first[2], limit=1)] == \
        newest_first[3:4]
    assert [e.entry_id for e in await repo.list_for(A, before=newest_first[3], limit=5)] == \
        newest_first[4:]
