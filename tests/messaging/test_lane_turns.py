"""What each turn of the write lane holds: journal syncs left to the insert behind, reads outside.

Counted with a PyMongo command listener against a real SecantusDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.commands import Commands, counted_services
from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.writelane import BACKGROUND, URGENT

WAIT_SECS = 30.0  # generous: the machine may be loaded


@pytest.fixture
async def counted(mongo_uri: str) -> AsyncIterator[tuple[Services, Commands]]:
    async with counted_services(mongo_uri) as built:
        yield built


async def _until(probe: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECS
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_activity_written_while_an_insert_waits_leaves_the_sync_to_that_insert(
        counted: tuple[Services, Commands]) -> None:
    services, commands = counted
    lane = services.lane
    first_done = asyncio.Event()

    async def first_insert() -> None:
        async with lane.hold(URGENT):
            await first_done.wait()

    async def next_insert() -> None:
        async with lane.hold(URGENT):
            await services.store.db["lane_probe"].insert_one({"_id": "after"})

    holder = asyncio.create_task(first_insert())
    await _until(lambda: lane.urgent_next() is False and lane.waiting == 0, "the first holder")
    services.activity.record("user.login", "ann@example.com")
    await _until(lambda: lane.waiting == 1, "the activity batch to wait for the lane")
    follower = asyncio.create_task(next_insert())
    await _until(lambda: lane.waiting == 2, "the next insert to wait for the lane")
    first_done.set()  # after an urgent write the others go first: the activity, then the insert
    await asyncio.wait_for(asyncio.gather(holder, follower), WAIT_SECS)
    await asyncio.wait_for(services.activity.written(), WAIT_SECS)

    entry = commands.index("insert", "activity")
    after = commands.index("insert", "lane_probe")
    assert 0 <= entry < after
    assert commands.seen[entry][2] is False, "the activity insert asked for its own sync"
    assert commands.seen[after][2] is True, "the insert behind it did not sync the journal"
    feed = await services.activity.list_for("ann@example.com", before=None, limit=10)
    assert [e.kind for e in feed] == ["user.login"]


async def test_activity_with_no_insert_behind_it_syncs_its_own_write(
        counted: tuple[Services, Commands]) -> None:
    services, commands = counted
    services.activity.record("user.login", "bea@example.com")
    await asyncio.wait_for(services.activity.written(), WAIT_SECS)
    entry = commands.index("insert", "activity")
    assert entry >= 0 and commands.seen[entry][2] is True


async def test_a_receipt_batch_reads_its_messages_before_its_turn_of_the_lane(
        counted: tuple[Services, Commands]) -> None:
    services, commands = counted
    for email in ("r1@example.com", "r2@example.com"):
        await services.store.users.insert(User(email=email, name=email))
    sent = await services.messaging.send("r1@example.com", "r2@example.com", "hello")
    services.store.messages.recent.clear()  # as if another instance had stored it: read
    await services.messaging.summaries_written()
    await services.activity.written()  # nothing else of this send waits for the lane
    release = asyncio.Event()

    async def busy_lane() -> None:
        async with services.lane.hold(BACKGROUND):
            await release.wait()

    holder = asyncio.create_task(busy_lane())
    await _until(lambda: services.lane.urgent_next() is False and services.lane.waiting == 0,
                 "the lane to be held")
    start = len(commands.seen)
    mark = asyncio.create_task(
        services.messaging.mark("r2@example.com", [sent.message_id], "Delivered"))
    await _until(lambda: ("find", "messages", False) in commands.seen[start:],
                 "the receipt batch's read while the lane is held")
    await _until(lambda: services.lane.waiting == 1, "the receipt batch to wait for the lane")
    assert not any(name == "update" for name, _, _ in commands.seen[start:])
    release.set()
    changed = await asyncio.wait_for(mark, WAIT_SECS)
    await holder
    assert [(m.message_id, m.status) for m in changed] == [(sent.message_id, "Delivered")]
    stored = await services.messaging.get("r1@example.com", sent.message_id)
    assert stored.status == "Delivered"


async def test_delivered_receipts_do_not_wait_for_queued_chat_summaries_and_reads_do(
        counted: tuple[Services, Commands]) -> None:
    services, commands = counted
    messaging, lane = services.messaging, services.lane
    for email in ("s1@example.com", "s2@example.com"):
        await services.store.users.insert(User(email=email, name=email))
    first = await messaging.send("s1@example.com", "s2@example.com", "first")
    services.store.messages.recent.clear()  # as if another instance had stored it: read
    await messaging.summaries_written()
    await services.activity.written()
    release_first, release_second = asyncio.Event(), asyncio.Event()
    second_holds = asyncio.Event()

    async def hold(release: asyncio.Event, holding: asyncio.Event | None = None) -> None:
        async with lane.hold(BACKGROUND):
            if holding is not None:
                holding.set()
            await release.wait()

    holder = asyncio.create_task(hold(release_first))
    await _until(lambda: lane.waiting == 0 and not holder.done(), "the lane to be held")
    send = asyncio.create_task(messaging.send("s1@example.com", "s2@example.com", "second"))
    await _until(lambda: lane.waiting == 1, "the insert to wait for the lane")
    next_holder = asyncio.create_task(hold(release_second, second_holds))
    await _until(lambda: lane.waiting == 2, "a second holder to queue behind the insert")
    release_first.set()
    second = await asyncio.wait_for(send, WAIT_SECS)
    await asyncio.wait_for(second_holds.wait(), WAIT_SECS)
    # The second message's summary now waits for the lane behind the second holder.
    start = len(commands.seen)
    delivered = asyncio.create_task(
        messaging.mark("s2@example.com", [first.message_id], "Delivered"))
    await _until(lambda: ("find", "messages", False) in commands.seen[start:],
                 "the Delivered batch to read its message")
    assert ("update", "conversations", False) not in commands.seen[start:]
    assert ("commitTransaction", "1", False) not in commands.seen[start:]
    read = asyncio.create_task(messaging.mark("s2@example.com", [second.message_id], "Read"))
    release_second.set()
    assert [m.status for m in await asyncio.wait_for(delivered, WAIT_SECS)] == ["Delivered"]
    assert [m.status for m in await asyncio.wait_for(read, WAIT_SECS)] == ["Read"]
    await asyncio.gather(holder, next_holder)
    # The Read came after the summary that counted its message unread: one left unread.
    [chat] = await messaging.chats("s2@example.com")
    assert chat["unread_count"] == 1
    assert chat["last_message"]["message_id"] == second.message_id
