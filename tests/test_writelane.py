"""The write lane: one holder at a time, most urgent first, and nothing starves."""

from __future__ import annotations

import asyncio

from whatsease.writelane import ACK, BACKGROUND, RECEIPTS, URGENT, WriteLane


async def test_one_holder_at_a_time_most_urgent_next_with_alternation() -> None:
    lane = WriteLane()
    order: list[str] = []
    release = asyncio.Event()
    inside = 0

    async def write(name: str, priority: int, wait: bool = False) -> None:
        nonlocal inside
        async with lane.hold(priority):
            inside += 1
            assert inside == 1
            order.append(name)
            if wait:
                await release.wait()
            await asyncio.sleep(0)
            inside -= 1

    first = asyncio.create_task(write("first-background", BACKGROUND, wait=True))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(write(n, p)) for n, p in (
        ("activity", BACKGROUND), ("receipts", RECEIPTS), ("insert-1", URGENT),
        ("summary", ACK), ("insert-2", URGENT))]
    await asyncio.sleep(0)
    assert lane.waiting == 5
    release.set()
    await asyncio.gather(first, *tasks)
    # Urgent after anything else; after an urgent write, the other classes in turn.
    assert order == ["first-background", "insert-1", "summary", "insert-2", "receipts",
                     "activity"]
    assert lane.waiting == 0


async def test_no_class_starves_while_urgent_writes_keep_coming() -> None:
    lane = WriteLane()
    order: list[int] = []
    stop = asyncio.Event()

    async def stream(priority: int) -> None:
        # Each class always has the next write waiting, like a busy batcher.
        while not stop.is_set():
            async with lane.hold(priority):
                order.append(priority)
                if len(order) >= 60:
                    stop.set()
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(
        stream(p) for p in (URGENT, ACK, RECEIPTS, BACKGROUND))), 5)
    window = order[20:60]
    assert window[::2].count(URGENT) >= 19 or window[1::2].count(URGENT) >= 19
    for priority in (ACK, RECEIPTS, BACKGROUND):
        assert window.count(priority) >= 5, (priority, window)


async def test_a_cancelled_waiter_is_skipped() -> None:
    lane = WriteLane()
    release = asyncio.Event()
    ran: list[str] = []

    async def hold(name: str, priority: int) -> None:
        async with lane.hold(priority):
            ran.append(name)
            if name == "holder":
                await release.wait()

    holder = asyncio.create_task(hold("holder", BACKGROUND))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(hold("doomed", URGENT))
    later = asyncio.create_task(hold("later", RECEIPTS))
    await asyncio.sleep(0)
    doomed.cancel()
    release.set()
    await asyncio.gather(holder, later)
    assert ran == ["holder", "later"]
    async with lane.hold(URGENT):  # free again
        pass


async def test_urgent_next_only_while_a_non_urgent_holder_has_an_insert_behind_it() -> None:
    lane = WriteLane()
    assert not lane.urgent_next()  # nobody holds it
    seen: dict[str, bool] = {}
    holding = asyncio.Event()
    release = asyncio.Event()

    async def background() -> None:
        async with lane.hold(BACKGROUND):
            seen["alone"] = lane.urgent_next()
            holding.set()
            await release.wait()
            seen["insert behind"] = lane.urgent_next()

    async def insert() -> None:
        async with lane.hold(URGENT):
            seen["urgent holder"] = lane.urgent_next()

    holder = asyncio.create_task(background())
    await holding.wait()
    receipts = asyncio.create_task(_hold_once(lane, RECEIPTS))
    await asyncio.sleep(0)
    assert not lane.urgent_next()  # only a receipt batch waits: no sync follows
    waiting = asyncio.create_task(insert())
    await asyncio.sleep(0)
    assert lane.urgent_next()
    release.set()
    await asyncio.gather(holder, waiting, receipts)
    assert seen == {"alone": False, "insert behind": True, "urgent holder": False}


async def test_urgent_next_ignores_an_insert_that_gave_up_waiting() -> None:
    lane = WriteLane()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def background() -> None:
        async with lane.hold(ACK):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(background())
    await holding.wait()
    waiting = asyncio.create_task(_hold_once(lane, URGENT))
    await asyncio.sleep(0)
    assert lane.urgent_next()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not lane.urgent_next()
    release.set()
    await holder


async def _hold_once(lane: WriteLane, priority: int) -> None:
    async with lane.hold(priority):
        await asyncio.sleep(0)
