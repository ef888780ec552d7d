"""The message service on its own (no HTTP): the write lane it shares, sends and their order."""

from __future__ import annotations

import asyncio

from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.writelane import BACKGROUND


async def test_messaging_activity_and_support_share_the_one_injected_write_lane(
        services: Services) -> None:
    assert services.messaging.lane is services.lane
    assert services.activity.lane is services.lane


async def test_a_send_waits_for_the_write_lane_and_then_is_stored(services: Services) -> None:
    for email in ("m1@example.com", "m2@example.com"):
        await services.store.users.insert(User(email=email, name=email))
    async with services.lane.hold(BACKGROUND):
        send = asyncio.ensure_future(
            services.messaging.send("m1@example.com", "m2@example.com", "queued", client_id="q"))
        await asyncio.sleep(0.2)
        assert not send.done(), "the insert did not wait for the lane's holder"
    message = await asyncio.wait_for(send, 10)
    again = await services.messaging.send("m1@example.com", "m2@example.com", "queued",
                                          client_id="q")
    assert again.message_id == message.message_id
    assert (await services.messaging.get("m2@example.com", message.message_id)).content == "queued"
