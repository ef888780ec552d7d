"""The hub without a server: sockets per user, online transitions, counts, delivery."""

from __future__ import annotations

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
