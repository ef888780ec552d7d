"""The collector policy for many sockets, without a server: what is frozen, and when it thaws."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from whatsease.realtime import collector as collector_module
from whatsease.realtime.collector import FREEZE_AFTER_SOCKETS, Collector


class _Node:
    """A container object the collector tracks (and one that can be in a cycle)."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _walkable(objects: Sequence[object]) -> int:
    """How many of ``objects`` the collector would still walk (are not frozen)."""
    ids = {id(o) for g in range(3) for o in gc.get_objects(g)}
    return sum(id(o) in ids for o in objects)


@contextlib.contextmanager
def installed(sockets: Callable[[], int]) -> Iterator[Collector]:
    """A `Collector` hooked into the collector for the block (``sockets``: how many are open)."""
    collector = Collector(sockets)
    collector.install()
    try:
        yield collector
    finally:
        collector.uninstall()


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_what_survives_a_collection_is_frozen_once_sockets_are_many(thawed: None) -> None:
    sockets = FREEZE_AFTER_SOCKETS
    with installed(lambda: sockets) as collector:
        collector.freeze("in a test")
        kept = [_Node() for _ in range(100)]
        assert _walkable(kept) == 100  # young: the next collection walks them once
        gc.collect(0)
        assert _walkable(kept) == 0  # survived it: frozen, never walked again


async def test_nothing_is_frozen_with_few_sockets(thawed: None) -> None:
    with installed(lambda: FREEZE_AFTER_SOCKETS - 1):
        kept = [_Node() for _ in range(100)]
        gc.collect()
        assert _walkable(kept) == 100 and gc.get_freeze_count() == 0


async def test_cycles_frozen_while_alive_are_collected_once_most_sockets_close(
        thawed: None) -> None:
    sockets = [2 * FREEZE_AFTER_SOCKETS]
    with installed(lambda: sockets[0]) as collector:
        collector.freeze("in a test")
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        gc.collect(0)  # the pair survives it: frozen
        assert _walkable([a, b]) == 0
        del a, b  # garbage now, but in a cycle among frozen objects
        gc.collect()
        assert gone() is not None  # frozen: out of the collector's sight
        sockets[0] = FREEZE_AFTER_SOCKETS - 1  # most frozen sockets closed
        collector.detached()
        assert gc.get_freeze_count() == 0
        await asyncio.sleep(0)  # the sweep runs on the loop, soon
        assert gone() is None and collector.sweeps == 1


async def test_freezing_resumes_after_the_sweep_if_sockets_are_still_many(
        thawed: None) -> None:
    sockets = [4 * FREEZE_AFTER_SOCKETS]
    with installed(lambda: sockets[0]) as collector:
        collector.freeze("in a test")
        sockets[0] = FREEZE_AFTER_SOCKETS  # under half, still many
        collector.detached()
        assert collector.frozen_at == 0
        await asyncio.sleep(0)
        assert collector.sweeps == 1
        assert collector.frozen_at == FREEZE_AFTER_SOCKETS and gc.get_freeze_count() > 0


async def test_the_freeze_is_lifted_when_frozen_objects_outgrow_the_bound(
        thawed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector_module, "SWEEP_GROWTH", 1.0)  # any growth is too much
    with installed(lambda: FREEZE_AFTER_SOCKETS) as collector:
        collector.freeze("in a test")
        kept = [_Node() for _ in range(100)]
        gc.collect(0)  # its survivors grow the frozen objects past the bound
        assert collector.frozen_at == 0 and _walkable(kept) == 100
        await asyncio.sleep(0)
        assert collector.sweeps == 1 and collector.frozen_at  # swept, then frozen again


async def test_the_young_generation_is_collected_every_so_often_while_sockets_are_many(
        thawed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each object freed from an older generation takes one off the allocation count
    # that triggers a young collection: with as many freed as made, none would come.
    monkeypatch.setattr(collector_module, "YOUNG_EVERY_SECS", 0.05)
    sockets = [FREEZE_AFTER_SOCKETS - 1]
    collector = Collector(lambda: sockets[0])
    collector.install()
    collections: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            collections.append(info["generation"])

    gc.callbacks.append(seen)
    threshold = gc.get_threshold()
    gc.set_threshold(10**9)  # no young collection by the allocation count in this test
    try:
        await asyncio.sleep(0.2)
        assert collections == []  # few sockets: the collector is left alone
        sockets[0] = FREEZE_AFTER_SOCKETS
        collector.freeze("in a test")
        kept = [_Node() for _ in range(100)]
        await asyncio.sleep(0.3)
        assert 0 in collections
        assert _walkable(kept) == 0  # walked once by a young collection, then frozen
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(seen)
        collector.uninstall()
