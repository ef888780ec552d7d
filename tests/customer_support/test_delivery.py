"""Support frames and writes take the messenger's paths: the one hub, group-committed inserts."""

from __future__ import annotations

import asyncio

from tests.customer_support.conftest import (
    go_online,
    make_agent,
    make_org,
    messages_of,
    watch_customer,
)
from whatsease.services import Services
from whatsease.support.service import SupportService, console_key, customer_key
from whatsease.writelane import BACKGROUND


async def test_widget_and_console_sockets_live_in_the_process_hub(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    console = await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    widget = watch_customer(support, conversation)
    hub = services.hub
    assert hub.connections(console_key(alex.email)) == [console]
    assert hub.connections(customer_key(conversation.conversation_id)) == [widget]
    # Chat frames to the agent's own address never reach their console.
    assert hub.connections(alex.email) == []


async def test_customer_messages_are_group_committed_and_retries_are_idempotent(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    conversations = [(await support.start_session(org, f"C{i}", f"c{i}@x.test"))[0]
                     for i in range(6)]
    # Hold the write lane so that every insert queues behind it: they must
    # then go to the database together, in one batch, when it is let go.
    lane = services.messaging.lane
    async with lane.hold(BACKGROUND):
        sends = [asyncio.ensure_future(support.customer_send(c.conversation_id, "hi",
                                                               client_id="same"))
                 for c in conversations]
        retry = asyncio.ensure_future(support.customer_send(
            conversations[0].conversation_id, "hi", client_id="same"))
        await asyncio.sleep(0.2)
        assert not any(s.done() for s in sends), "inserts did not wait for the write lane"
    stored = await asyncio.wait_for(asyncio.gather(*sends, retry), 10)
    assert stored[-1].message_id == stored[0].message_id
    assert len({m.message_id for m in stored[:-1]}) == len(conversations)
    texts = [m["content"] for m in await messages_of(support, conversations[0].conversation_id)]
    assert texts.count("hi") == 1
