"""The hub without a server: sockets per user, online transitions, counts, delivery."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, field

from whatsease.delivery.hub import Hub


@dataclass(eq=False)
class Socket:
    """A stand-in for a transport: records what the hub hands it."""

    user: str
    session_id: str = "s1"
    home_route: str = ""
    frames: list[bytes] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)

    def send_frame(self, data: bytes) -> None:
        self.frames.append(data)

    def close(self, code: int, reason: str) -> None:
        self.closed.append(code)


def test_first_and_last_socket_and_counts() -> None:
    hub = Hub()
    a1, a2, b1 = Socket("a"), Socket("a"), Socket("b", session_id="s2")
    assert hub.add(a1) is True
    assert hub.add(a2) is False
    assert hub.add(a2) is False  # twice is once
    assert hub.add(b1) is True
    assert (hub.socket_count, hub.user_count) == (3, 2)
    assert hub.send("a", b"x", exclude=a1) == 1
    assert a2.frames == [b"x"] and not a1.frames
    assert hub.send_many(["a", "b", "a", "nobody"], b"y") == 3
    hub.close_session("s2", 4001, "revoked")
    assert b1.closed == [4001]
    assert hub.remove(a1) is False
    assert hub.remove(a1) is False  # unknown now: no change
    assert hub.remove(a2) is True
    assert hub.remove(b1) is True
    assert (hub.socket_count, hub.user_count) == (0, 0)
    assert not hub.is_online("a")


def test_sockets_stay_oldest_first_through_a_users_second_and_third_socket() -> None:
    hub = Hub()
    a1, a2, a3 = Socket("a"), Socket("a"), Socket("a")
    assert hub.add(a1) is True
    assert hub.add(a1) is True  # twice is once: still the first socket
    assert hub.socket_count == 1
    hub.add(a2)
    hub.add(a3)
    assert hub.connections("a") == [a1, a2, a3]
    assert hub.remove(a2) is False
    assert hub.connections("a") == [a1, a3]
    assert hub.remove(a1) is False
    assert hub.connections("a") == [a3]
    assert hub.add(a1) is False
    assert hub.connections("a") == [a3, a1]  # a1 came back last: now the newest
    assert (hub.socket_count, hub.user_count) == (2, 1)
    assert hub.remove(a3) is False and hub.remove(a1) is True
    assert hub.connections("a") == [] and hub.socket_count == 0


def test_a_socket_closing_while_it_is_sent_to_leaves_the_others_served() -> None:
    hub = Hub()

    @dataclass(eq=False)
    class Closing(Socket):
        def send_frame(self, data: bytes) -> None:
            hub.remove(self)  # as a socket over its queue bound does (4008)

    first, second = Closing("a"), Socket("a")
    hub.add(first)
    hub.add(second)
    assert hub.send("a", b"x") == 2
    assert second.frames == [b"x"] and hub.connections("a") == [second]
    only = Closing("b")
    hub.add(only)
    assert hub.send("b", b"y") == 1
    assert not hub.is_online("b")


def test_a_user_with_one_socket_costs_the_hub_no_container_of_their_own() -> None:
    hub = Hub()
    sockets = [Socket(f"user{i}") for i in range(2000)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for sock in sockets:
            hub.add(sock)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_socket = sum(d.size_diff for d in after.compare_to(before, "filename")) / len(sockets)
    # The user -> socket table's share only (~40-80 bytes); a dict per user was 224 more.
    assert per_socket < 150, per_socket
