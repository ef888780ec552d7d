"""A live socket's protocol state stays small: it exists once per socket (10,000s of them)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from whatsease.realtime.collector import FREEZE_AFTER_SOCKETS, GC_YOUNG_THRESHOLD
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


async def test_a_session_has_no_dict_and_takes_under_250_bytes(services: Services) -> None:
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
    # ~1,670 bytes with a dict and an empty deque; ~540 with a set of tasks per socket;
    # ~330 with a bucket object and an empty dict of typing checks of its own (~184 now).
    assert per_session < 250, per_session


async def test_a_ramp_is_frozen_out_of_the_collector_while_it_goes_on(
        services: Services) -> None:
    realtime = services.realtime
    assert realtime is not None
    gc.unfreeze()
    sockets = [_Socket(f"ramp{i}@example.com") for i in range(FREEZE_AFTER_SOCKETS)]
    try:
        for sock in sockets[:-1]:
            realtime.attach(sock)
        assert gc.get_freeze_count() == 0
        # The next socket completes a batch: frozen now, not when the ramp stops.
        collections: list[int] = []

        def seen(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                collections.append(info["generation"])

        gc.callbacks.append(seen)
        try:
            realtime.attach(sockets[-1])
        finally:
            gc.callbacks.remove(seen)
        assert gc.get_freeze_count() > 0
        # Frozen as they are: a collection here would walk every socket of the batch.
        assert collections == []
    finally:
        for sock in sockets:
            realtime.detach(sock)
        gc.unfreeze()


async def test_the_young_generation_is_collected_less_often_than_by_default(
        services: Services) -> None:
    assert services.realtime is not None
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700
