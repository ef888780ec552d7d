"""A session's own rate limit on frames other than sends, without a server."""

from __future__ import annotations

import orjson

from whatsease.delivery.frames import WS_4029_RATE_LIMITED
from whatsease.realtime.protocol import Frame
from whatsease.realtime.service import OTHER_FRAMES_BURST, RATE_LIMIT_STRIKES, ClientSession
from whatsease.services import Services


class _Socket:
    """The least a hub connection is (see delivery.hub.Connection); keeps what it is sent."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.session_id = "s"
        self.home_route = ""
        self.frames: list[dict[str, object]] = []
        self.closed: list[int] = []

    def send_frame(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))

    def close(self, code: int, reason: str) -> None:
        self.closed.append(code)


async def test_pings_past_the_burst_are_refused_then_the_socket_is_closed(
        services: Services) -> None:
    realtime = services.realtime
    assert realtime is not None
    sock = _Socket("limits@example.com")
    session = ClientSession(realtime, sock)
    extra = RATE_LIMIT_STRIKES - 1  # refused, not yet closed
    for i in range(OTHER_FRAMES_BURST + extra):
        assert session.receive(Frame("ping", ref=f"p{i}")) is None
    pongs = [f for f in sock.frames if f["type"] == "pong"]
    refused = [f for f in sock.frames if f["type"] == "error"]
    # The bucket refills at 100 frames/s: a slow machine may let a few more through.
    assert len(pongs) >= OTHER_FRAMES_BURST and refused
    assert len(pongs) + len(refused) == OTHER_FRAMES_BURST + extra
    assert {f["code"] for f in refused} == {"rate_limited"}
    assert pongs[0]["ref"] == "p0" and not sock.closed
    for _ in range(RATE_LIMIT_STRIKES):
        session.receive(Frame("ping"))
    assert sock.closed[:1] == [WS_4029_RATE_LIMITED]
