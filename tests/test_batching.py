"""Group commit: batches form from what queued during a flush, and lingering gathers more."""

from __future__ import annotations

import asyncio

import pytest

from whatsease.batching import Batcher


async def _record(batches: list[list[int]], items: list[int]) -> list[int]:
    batches.append(list(items))
    await asyncio.sleep(0.01)  # a database round trip
    return [i * 10 for i in items]


async def test_items_queued_during_a_flush_go_in_the_next_one() -> None:
    batches: list[list[int]] = []
    batcher: Batcher[int, int] = Batcher(lambda items: _record(batches, items))
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)  # the first flush starts with one item
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
    assert await first == 10
    assert [await r for r in rest] == [20, 30, 40]
    assert batches == [[1], [2, 3, 4]]


async def test_linger_gathers_items_that_arrive_within_it() -> None:
    batches: list[list[int]] = []
    # A linger far longer than any pause a loaded machine can put between the two
    # submits: the second one arrives within it, however the process is scheduled.
    batcher: Batcher[int, int] = Batcher(lambda items: _record(batches, items), linger=2.0)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)  # well inside the linger
    second = asyncio.ensure_future(batcher.submit(2))
    assert (await first, await second) == (10, 20)
    assert batches == [[1, 2]]


async def test_a_busy_window_linger_lets_a_lone_item_go_at_once() -> None:
    batches: list[list[int]] = []
    # Nothing was flushed before: not busy, so the 30 s linger does not apply.
    batcher: Batcher[int, int] = Batcher(lambda items: _record(batches, items), linger=30,
                                         busy_window=60)
    done, _ = await asyncio.wait([asyncio.ensure_future(batcher.submit(1))], timeout=5)
    assert len(done) == 1, "a lone item on an idle batcher waited for the linger"
    assert batches == [[1]]


async def test_a_busy_window_linger_gathers_while_flushes_keep_coming() -> None:
    batches: list[list[int]] = []
    batcher: Batcher[int, int] = Batcher(lambda items: _record(batches, items), linger=2.0,
                                         busy_window=600)
    assert await batcher.submit(1) == 10  # at once: nothing before it
    # The previous flush began well within the window: this one lingers.
    second = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    third = asyncio.ensure_future(batcher.submit(3))
    assert (await second, await third) == (20, 30)
    assert batches == [[1], [2, 3]]


async def test_a_full_batch_does_not_linger() -> None:
    batches: list[list[int]] = []
    batcher: Batcher[int, int] = Batcher(lambda items: _record(batches, items), max_batch=2,
                                         linger=30)
    results = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    done, _ = await asyncio.wait(results, timeout=5)
    assert len(done) == 2, "a full batch waited for its linger"
    assert batches == [[1, 2]]


async def test_a_failed_flush_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls: list[list[int]] = []

    async def flaky(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return items

    batcher: Batcher[int, int] = Batcher(flaky)
    with pytest.raises(RuntimeError, match="database down"):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2


async def test_barrier_waits_for_earlier_items_only() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        batches.append(list(items))
        await release.wait()
        return items

    batcher: Batcher[int, int] = Batcher(slow)
    await batcher.barrier()  # nothing submitted: returns at once
    batcher.submit_nowait(1)
    barrier = asyncio.ensure_future(batcher.barrier())
    await asyncio.sleep(0)
    batcher.submit_nowait(2)  # after the barrier: not waited for
    await asyncio.sleep(0.01)
    assert not barrier.done()
    release.set()
    await asyncio.wait_for(barrier, 5)
    assert batches[0] == [1]
    await asyncio.wait_for(batcher.drain(), 5)
    assert batches == [[1], [2]]


async def test_barrier_is_released_by_a_failed_flush() -> None:
    async def failing(items: list[int]) -> list[int]:
        raise RuntimeError("database down")

    batcher: Batcher[int, int] = Batcher(failing)
    batcher.submit_nowait(1)
    await asyncio.wait_for(batcher.barrier(), 5)


async def test_a_barrier_ends_a_linger_at_once() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> list[None]:
        flushed.append(items)
        return [None] * len(items)

    # An hour's linger: only the barrier can end it within the test's bounds.
    batcher: Batcher[int, None] = Batcher(flush, max_batch=10, linger=3600)
    batcher.submit_nowait(1)
    batcher.submit_nowait(2)
    await asyncio.wait_for(batcher.barrier(), 30)
    assert flushed == [[1, 2]]


async def test_a_full_batch_does_not_wait_out_the_linger() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> list[None]:
        flushed.append(items)
        return [None] * len(items)

    batcher: Batcher[int, None] = Batcher(flush, max_batch=3, linger=3600)
    first = asyncio.ensure_future(batcher.submit(0))
    for _ in range(5):
        await asyncio.sleep(0)  # the flush has started to linger
    assert not first.done() and not flushed
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.wait_for(asyncio.gather(first, *rest), 30)
    assert flushed == [[0, 1, 2]]
