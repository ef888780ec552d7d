"""Sync positions when other processes write the same database: the settle window,
overdue writes, and paging a held-back tail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from whatsease.messaging.revisions import CLOCK_SKEW_SECS, Cursor, Revisions
from whatsease.messaging.service import FIRST_ID, RESTAMP_MAX_TRIES
from whatsease.services import Services
from whatsease.storage.models import Message, User, conversation_id, id_at, id_seconds, new_id
from whatsease.timeutil import utcnow
from whatsease.writelane import BACKGROUND

SETTLE_SECS = 3.0  # short enough to wait out; a write in time is never overdue


async def _users(services: Services, *emails: str) -> None:
    for email in emails:
        await services.store.users.insert(User(email=email, name=email))


def test_the_time_bound_sorts_below_every_id_of_its_second_whatever_the_process() -> None:
    now = time.time()
    bound = id_at(now)
    assert id_seconds(bound) == int(now)
    made = new_id()
    assert made > bound and id_seconds(made) >= int(now)
    # Another process's id of the same second, with the lowest random bytes possible.
    assert f"{int(now):08x}0000000001000001" > bound
    assert id_at(now - 1) < f"{int(now) - 1:08x}0000000000000001"


def test_a_shared_database_holds_the_cursor_behind_the_settle_window() -> None:
    alone = Revisions()
    assert id_seconds(alone.settled_below()) >= int(time.time())
    assert not alone.overdue(0.0)  # one process: nothing is ever overdue
    shared = Revisions()
    shared.share(SETTLE_SECS)
    assert id_seconds(shared.settled_below()) <= int(time.time() - SETTLE_SECS)
    assert shared.overdue(time.time() - SETTLE_SECS)
    assert not shared.overdue(time.time())
    with pytest.raises(ValueError, match="clock skew"):
        Revisions().share(CLOCK_SKEW_SECS)


def test_cursor_text_round_trips() -> None:
    for text in (None, "a" * 24, f"{'a' * 24}.{'b' * 24}", f"~{'c' * 24}.{'d' * 24}",
                 f"{'a' * 24}.{'b' * 24}~{'c' * 24}.{'d' * 24}"):
        assert Cursor.parse(text).text() == text


async def test_sync_in_a_cluster_returns_recent_changes_but_keeps_the_cursor_behind(
        services: Services) -> None:
    messaging = services.messaging
    messaging.share_database(SETTLE_SECS)
    await _users(services, "a@example.com", "b@example.com")
    old = await messaging.send("a@example.com", "b@example.com", "old")
    await asyncio.sleep(SETTLE_SECS + 1.1)  # "old" is now settled
    new = await messaging.send("a@example.com", "b@example.com", "new")
    page, more, cursor = await messaging.changes_since("b@example.com", None)
    assert [m.message_id for m in page] == [old.message_id, new.message_id] and not more
    assert cursor == f"{old.rev}.{old.message_id}"  # not past "new": it may have company
    page, _, again = await messaging.changes_since("b@example.com", cursor)
    assert [m.message_id for m in page] == [new.message_id] and again == cursor


async def test_paging_a_held_back_tail_moves_on_and_ends_at_the_settled_position(
        services: Services) -> None:
    messaging = services.messaging
    messaging.share_database(SETTLE_SECS)
    await _users(services, "c@example.com", "d@example.com")
    sent = [(await messaging.send("c@example.com", "d@example.com", f"m{i}")).message_id
            for i in range(7)]
    got: list[str] = []
    cursor: str | None = None
    cursors = []
    for _ in range(10):  # a client asking while more: the tail is all recent
        page, more, cursor = await messaging.changes_since("d@example.com", cursor, limit=3)
        got += [m.message_id for m in page]
        cursors.append(cursor)
        if not more:
            break
    assert got == sent
    assert cursors[0] is not None and cursors[0].startswith("~")  # nothing settled yet
    assert cursors[-1] == FIRST_ID  # the end: from the start again next time
    # A socket's first sync ignores where paging stood: the client may have left mid-tail.
    page, _, _ = await messaging.changes_since("d@example.com", cursors[0], limit=3,
                                               resume=False)
    assert [m.message_id for m in page] == sent[:3]


async def test_a_message_that_waited_for_the_lane_gets_its_rev_when_written(
        services: Services) -> None:
    """Another instance may have handed out a cursor above the message's id while it
    waited: its rev is made when the write starts, not when it was queued, so the
    wait costs no second write (restamping after every slow wait fed a lagging
    database more writes)."""
    messaging = services.messaging
    messaging.share_database(SETTLE_SECS)
    await _users(services, "e@example.com", "f@example.com")
    async with services.lane.hold(BACKGROUND):  # the insert waits past the window
        send = asyncio.ensure_future(messaging.send("e@example.com", "f@example.com", "slow"))
        await asyncio.sleep(SETTLE_SECS - CLOCK_SKEW_SECS + 1.1)
    message = await asyncio.wait_for(send, 10)
    stored = await services.store.messages.get(message.message_id)
    assert stored is not None and stored.rev > message.message_id
    assert id_seconds(stored.rev) > id_seconds(message.message_id)
    # Fresh enough for any cursor handed out while it waited.
    assert stored.rev > id_at(time.time() - SETTLE_SECS)
    assert stored.rev == message.rev  # made once, at the write: no restamp
    quick = await messaging.send("e@example.com", "f@example.com", "quick")
    stored = await services.store.messages.get(quick.message_id)
    assert stored is not None and stored.rev == quick.rev >= quick.message_id


async def test_a_sync_after_a_bare_message_id_brings_another_instances_lower_id_stored_later(
        services: Services) -> None:
    """A client seeds its first sync with the newest message of its chat list."""
    messaging = services.messaging
    messaging.share_database(SETTLE_SECS)
    await _users(services, "g@example.com", "h@example.com")
    newest = await messaging.send("g@example.com", "h@example.com", "in the chat list")
    # Another instance's message of the same second (lower per-process bytes) lands now.
    late = Message(message_id=f"{newest.message_id[:8]}0000000001000001",
                   sender="g@example.com", recipient="h@example.com", content="late",
                   timestamp=utcnow(),
                   conversation_id=conversation_id("g@example.com", "h@example.com"))
    assert late.message_id < newest.message_id
    await services.store.messages.insert_many([late])
    page, _, cursor = await messaging.changes_since("h@example.com", newest.message_id)
    assert [m.message_id for m in page] == [late.message_id, newest.message_id]
    assert cursor is not None and cursor < late.message_id  # both are still recent


async def test_one_instance_syncs_after_a_bare_message_id_from_that_id(
        services: Services) -> None:
    messaging = services.messaging
    await _users(services, "i@example.com", "j@example.com")
    first = await messaging.send("i@example.com", "j@example.com", "one")
    second = await messaging.send("i@example.com", "j@example.com", "two")
    page, _, _ = await messaging.changes_since("j@example.com", first.message_id)
    assert [m.message_id for m in page] == [second.message_id]


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the gate never got there")


async def test_sync_reads_arriving_all_the_time_do_not_keep_a_write_out() -> None:
    """After a ring change hundreds of clients sync at once: a write waits for the reads
    inside, not for every read that arrives after it."""
    gate = Revisions()
    order: list[str] = []
    release = {name: asyncio.Event() for name in ("r1", "w", "r2", "r3", "w2")}

    async def read(name: str) -> None:
        async with gate.reading():
            order.append(f"{name} in")
            await release[name].wait()
        order.append(f"{name} out")

    async def write(name: str) -> None:
        async with gate.writing():
            order.append(f"{name} in")
            await release[name].wait()
        order.append(f"{name} out")

    tasks = [asyncio.ensure_future(read("r1"))]
    await _until(lambda: "r1 in" in order)
    tasks.append(asyncio.ensure_future(write("w")))
    await _until(lambda: gate._writers_waiting == 1)
    tasks += [asyncio.ensure_future(read("r2")), asyncio.ensure_future(read("r3"))]
    await _until(lambda: gate._readers_waiting == 2)
    assert order == ["r1 in"]  # the newer reads wait behind the write
    release["r1"].set()
    await _until(lambda: "w in" in order)
    tasks.append(asyncio.ensure_future(write("w2")))  # a newer write waits behind the reads
    await _until(lambda: gate._writers_waiting == 1)
    release["w"].set()
    await _until(lambda: "r2 in" in order and "r3 in" in order)  # together
    assert "w2 in" not in order
    release["r2"].set()
    release["r3"].set()
    release["w2"].set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order.index("w in") < order.index("r2 in") < order.index("w2 in")


async def test_a_cancelled_waiting_write_lets_the_reads_behind_it_in() -> None:
    gate = Revisions()
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def read_until_told() -> None:
        async with gate.reading():
            inside.set()
            await leave.wait()

    async def write() -> None:
        async with gate.writing():
            pass

    async def read() -> None:
        async with gate.reading():
            pass

    first = asyncio.ensure_future(read_until_told())
    await asyncio.wait_for(inside.wait(), 5)
    waiting_write = asyncio.ensure_future(write())
    await _until(lambda: gate._writers_waiting == 1)
    later = asyncio.ensure_future(read())
    await _until(lambda: gate._readers_waiting == 1)
    waiting_write.cancel()
    leave.set()
    await asyncio.wait_for(asyncio.gather(first, later), 5)
    assert waiting_write.cancelled()


async def test_an_overdue_write_gets_one_fresh_rev_in_the_background(
        services: Services) -> None:
    """A write that itself took longer than the window (a saturated database) is
    restamped once, without anyone waiting for it; past the last try it is left
    alone (and counted) rather than given yet another write."""
    messaging = services.messaging
    messaging.share_database(SETTLE_SECS)
    await _users(services, "k@example.com", "l@example.com")
    first = await messaging.send("k@example.com", "l@example.com", "slow write")
    second = await messaging.send("k@example.com", "l@example.com", "slower still")
    overdue_since = time.time() - SETTLE_SECS  # as if each write had taken that long
    messaging._settle([first.message_id], overdue_since)
    messaging._settle([second.message_id], overdue_since, tries=RESTAMP_MAX_TRIES)
    await asyncio.wait_for(messaging.drain(), 10)
    stored = await services.store.messages.get(first.message_id)
    assert stored is not None and stored.rev > first.rev
    assert stored.rev > id_at(time.time() - SETTLE_SECS)
    stored = await services.store.messages.get(second.message_id)
    assert stored is not None and stored.rev == second.rev  # given up: no third write
