"""The keep-alive wheel: one ping per socket per interval; silent sockets closed in time."""

from __future__ import annotations

import asyncio

import pytest

from whatsease.realtime.keepalive import HEARD, QUIET, SLOTS, Keepalive


class Peer:
    """A socket as the wheel sees it; ``answers`` decides whether its pongs come back."""

    def __init__(self, wheel: Keepalive, answers: bool = True) -> None:
        self.wheel = wheel
        self.answers = answers
        self.keepalive_slot = 0
        self.keepalive_state = QUIET
        self.pings: list[float] = []
        self.closed_at: float | None = None
        self.closed = asyncio.Event()

    def send_ping(self) -> None:
        self.pings.append(asyncio.get_running_loop().time())
        if self.answers:  # the pong arrives a moment later, as over a socket
            asyncio.get_running_loop().call_soon(self._pong)

    def _pong(self) -> None:
        self.keepalive_state = QUIET

    def frame(self) -> None:
        """The peer sent a frame (as the transport's ``on_message`` records it)."""
        self.keepalive_state = HEARD

    def ping_timed_out(self) -> None:
        self.closed_at = asyncio.get_running_loop().time()
        self.closed.set()
        self.wheel.discard(self)


async def test_each_socket_is_pinged_once_per_interval() -> None:
    wheel = Keepalive(0.5, 0.4)
    loop = asyncio.get_running_loop()
    peers = [Peer(wheel) for _ in range(40)]
    joined = []
    for i, peer in enumerate(peers):
        wheel.add(peer)
        joined.append(loop.time())
        if i % 10 == 9:
            await asyncio.sleep(0.1)  # joined at different times
    await asyncio.sleep(1.7)
    for peer, at in zip(peers, joined, strict=True):
        assert 2 <= len(peer.pings) <= 5, peer.pings
        gaps = [b - a for a, b in zip(peer.pings, peer.pings[1:], strict=False)]
        assert all(0.4 <= g <= 0.7 for g in gaps), gaps
        assert peer.pings[0] - at <= 0.5 + 0.2  # the first ping within one interval of joining
        assert peer.closed_at is None
    for peer in peers:
        wheel.discard(peer)
    assert len(wheel) == 0


async def test_a_silent_socket_is_closed_after_the_timeout_and_others_stay() -> None:
    wheel = Keepalive(0.5, 0.2)
    silent, alive = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(silent)
    wheel.add(alive)
    await asyncio.wait_for(silent.closed.wait(), 3)
    assert silent.closed_at is not None
    waited = silent.closed_at - silent.pings[0]
    assert 0.2 - 0.03 <= waited <= 0.2 + 0.1  # the timeout, give or take one tick
    assert len(silent.pings) == 1
    await asyncio.sleep(1.2)
    assert alive.closed_at is None and len(alive.pings) >= 3
    wheel.discard(alive)


async def test_a_timeout_as_long_as_the_interval_checks_the_previous_ping() -> None:
    wheel = Keepalive(0.3, 0.3)
    silent, alive = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(silent)
    wheel.add(alive)
    await asyncio.wait_for(silent.closed.wait(), 3)
    assert silent.closed_at is not None
    assert 0.25 <= silent.closed_at - silent.pings[0] <= 0.45
    await asyncio.sleep(1.0)
    assert alive.closed_at is None
    wheel.discard(alive)


async def test_the_timer_stops_when_no_socket_is_left() -> None:
    wheel = Keepalive(0.2, None)
    peer = Peer(wheel)
    wheel.add(peer)
    assert wheel._timer is not None
    wheel.discard(peer)
    wheel.discard(peer)  # twice is harmless
    assert wheel._timer is None and len(wheel) == 0
    await asyncio.sleep(0.4)
    assert peer.pings == []


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ping interval"):
        Keepalive(0, 1)


async def test_a_socket_that_keeps_sending_is_not_pinged_and_one_that_stops_is_closed() -> None:
    wheel = Keepalive(0.3, 0.2)
    busy, idle = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(busy)
    wheel.add(idle)
    for _ in range(10):  # a frame every 0.1 s for a second: more often than the interval
        busy.frame()
        await asyncio.sleep(0.1)
    assert busy.pings == [] and busy.closed_at is None
    assert len(idle.pings) >= 2  # an idle socket is still pinged every interval
    stopped = asyncio.get_running_loop().time()
    await asyncio.wait_for(busy.closed.wait(), 3)  # silent now, and it never answers pings
    assert busy.closed_at is not None and len(busy.pings) == 1
    # At most the visit that found its last frame, one interval more, then the timeout.
    assert busy.closed_at - stopped <= 2 * 0.3 + 0.2 + 0.15
    assert idle.closed_at is None
    wheel.discard(idle)


async def test_sockets_that_join_at_once_are_dealt_to_every_bucket() -> None:
    # A ramp: many sockets in one moment. Put in the bucket of that moment, each
    # visit to it would ping them all at once (and read all their pongs).
    wheel = Keepalive(0.5, 0.4)
    peers = [Peer(wheel) for _ in range(3 * SLOTS)]
    for peer in peers:
        wheel.add(peer)
    assert sorted(len(bucket) for bucket in wheel._slots) == [3] * SLOTS
    start = asyncio.get_running_loop().time()
    for _ in range(300):  # each is pinged within one interval (give or take a loaded loop)
        if all(peer.pings for peer in peers):
            break
        await asyncio.sleep(0.05)
    assert all(peer.pings and peer.pings[0] - start <= 0.5 + 0.2 for peer in peers)
    assert not any(peer.closed_at for peer in peers)
    for peer in peers:
        wheel.discard(peer)
    assert len(wheel) == 0 and wheel._timer is None
