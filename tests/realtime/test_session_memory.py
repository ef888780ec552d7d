"""A live socket's protocol state stays small: it exists once per socket (10,000s of them)."""

from __future__ import annotations

import tracemalloc

from whatsease.realtime.service import ClientSession
from whatsease.services import Services


class _Socket:
    """The least a hub connection is (see delivery.hub.Connection)."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.session_id = "s"
        self.home_route = ""

    def send_frame(self, data: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


async def test_a_session_has_no_dict_and_takes_under_a_kibibyte(services: Services) -> None:
    realtime = services.realtime
    assert realtime is not None
    sockets = [_Socket(f"u{i}@example.com") for i in range(500)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        sessions = [ClientSession(realtime, s) for s in sockets]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert not hasattr(sessions[0], "__dict__")
    per_session = sum(d.size_diff for d in after.compare_to(before, "filename")) / len(sessions)
    assert per_session < 1024, per_session  # was ~1,670 bytes with a dict and an empty deque
