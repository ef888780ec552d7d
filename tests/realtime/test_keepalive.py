"""The keep-alive wheel: a socket silent for most of two intervals is pinged; dead ones close."""

from __future__ import annotations

import asyncio

import pytest

from whatsease.realtime.keepalive import HEARD, SLOTS, Keepalive


class Peer:
    """A socket as the wheel sees it; ``answers`` decides whether its pongs come back."""

    def __init__(self, wheel: Keepalive, answers: bool = True) -> None:
        self.wheel = wheel
        self.answers = answers
        self.keepalive_slot = 0
        self.keepalive_state = HEARD
        self.pings: list[float] = []
        self.closed_at: float | None = None
        self.closed = asyncio.Event()

    def send_ping(self) -> None:
        self.pings.append(asyncio.get_running_loop().time())
        if self.answers:  # the pong arrives a moment later, as over a socket
            asyncio.get_running_loop().call_soon(self._pong)

    def _pong(self) -> None:
        self.keepalive_state = HEARD  # a pong shows the peer is there, as a frame does

    def frame(self) -> None:
        """The peer sent a frame (as the transport's ``on_message`` records it)."""
        self.keepalive_state = HEARD

    def ping_timed_out(self) -> None:
        self.closed_at = asyncio.get_running_loop().time()
        self.closed.set()
        self.wheel.discard(self)


async def test_a_silent_socket_is_pinged_after_most_of_two_intervals_and_again_after_its_pong(
        ) -> None:
    wheel = Keepalive(0.5, 0.4)  # visits every 0.1 s; a ping after 9 silent ones
    loop = asyncio.get_running_loop()
    peers = [Peer(wheel) for _ in range(40)]
    joined = []
    for i, peer in enumerate(peers):
        wheel.add(peer)
        joined.append(loop.time())
        if i % 10 == 9:
            await asyncio.sleep(0.1)  # joined at different times
    await asyncio.sleep(2.4)
    for peer, at in zip(peers, joined, strict=True):
        assert 2 <= len(peer.pings) <= 3, peer.pings
        # Silent since it joined: pinged after 8 to 9 visits (0.8-0.9 s), never before.
        assert 0.8 - 0.05 <= peer.pings[0] - at <= 0.9 + 0.25, peer.pings[0] - at
        # Its pong counts as hearing from it: the next ping comes 9 visits later.
        gaps = [b - a for a, b in zip(peer.pings, peer.pings[1:], strict=False)]
        assert all(0.8 <= g <= 1.2 for g in gaps), gaps
        assert peer.closed_at is None
    for peer in peers:
        wheel.discard(peer)
    assert len(wheel) == 0


async def test_a_silent_socket_is_closed_after_the_timeout_and_others_stay() -> None:
    wheel = Keepalive(0.5, 0.2)
    silent, alive = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(silent)
    wheel.add(alive)
    await asyncio.wait_for(silent.closed.wait(), 5)
    assert silent.closed_at is not None
    waited = silent.closed_at - silent.pings[0]
    assert 0.2 - 0.03 <= waited <= 0.2 + 0.15  # the timeout, in whole visits of 0.1 s
    assert len(silent.pings) == 1
    await asyncio.sleep(1.2)
    assert alive.closed_at is None and len(alive.pings) >= 1
    wheel.discard(alive)


async def test_a_timeout_as_long_as_the_interval_is_waited_for() -> None:
    wheel = Keepalive(0.3, 0.3)
    silent, alive = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(silent)
    wheel.add(alive)
    await asyncio.wait_for(silent.closed.wait(), 5)
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
    await asyncio.sleep(0.5)
    assert peer.pings == []


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ping interval"):
        Keepalive(0, 1)


async def test_a_socket_that_keeps_sending_is_not_pinged_and_one_that_stops_is_closed() -> None:
    wheel = Keepalive(0.3, 0.2)  # visits every 0.06 s: a ping after 0.48-0.54 s of silence
    busy, idle = Peer(wheel, answers=False), Peer(wheel)
    wheel.add(busy)
    wheel.add(idle)
    loop = asyncio.get_running_loop()
    for _ in range(12):  # a frame every 0.1 s for 1.2 s: never silent for long
        busy.frame()
        stopped = loop.time()
        await asyncio.sleep(0.1)
    assert busy.pings == [] and busy.closed_at is None
    assert len(idle.pings) >= 1  # an idle socket is still pinged
    await asyncio.wait_for(busy.closed.wait(), 5)  # silent now, and it never answers pings
    assert busy.closed_at is not None and len(busy.pings) == 1
    # Silent for 9 visits, then the timeout in whole visits (4 of 0.06 s).
    assert 0.48 - 0.05 <= busy.pings[0] - stopped <= 0.54 + 0.15
    assert busy.closed_at - stopped <= 0.54 + 0.24 + 0.2
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
    for _ in range(300):  # each is pinged after 9 visits of 0.1 s (give or take a loaded loop)
        if all(peer.pings for peer in peers):
            break
        await asyncio.sleep(0.05)
    assert all(peer.pings and peer.pings[0] - start <= 0.9 + 0.25 for peer in peers)
    assert not any(peer.closed_at for peer in peers)
    for peer in peers:
        wheel.discard(peer)
    assert len(wheel) == 0 and wheel._timer is None
