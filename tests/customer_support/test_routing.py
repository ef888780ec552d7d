"""Routing each customer message to the bot or an agent; queueing; handoffs both ways; transfer."""

from __future__ import annotations

import pytest

from tests.customer_support.conftest import (
    clock_of,
    current,
    go_offline,
    go_online,
    make_agent,
    make_org,
    messages_of,
    watch_customer,
)
from whatsease.errors import Conflict, NotFound
from whatsease.services import Services
from whatsease.support.service import QUEUED_TEXT, SessionEnded, SupportService


async def kinds(support: SupportService, cid: str) -> list[str]:
    return [m["kind"] for m in await messages_of(support, cid)]


async def test_with_bot_routing_the_bot_answers(support: SupportService) -> None:
    org = await make_org(support)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    widget = watch_customer(support, conversation)
    await support.customer_send(conversation.conversation_id, "where is my order")
    reply = await widget.expect("message", lambda f: f["message"]["kind"] == "bot")
    assert "order number" in reply["message"]["content"]
    assert reply["message"]["is_bot_response"] is True
    # The bot's context carries over to the customer's next message.
    await support.customer_send(conversation.conversation_id, "it's 48213")
    await support.wait_idle()
    messages = await messages_of(support, conversation.conversation_id)
    assert messages[-1]["kind"] == "bot" and "48213" in messages[-1]["content"]
    assert (await current(support, conversation.conversation_id)).handler == "bot"


async def test_with_agent_routing_an_online_agent_gets_the_conversation(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    console = await go_online(support, alex)
    conversation, _, messages = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    assert conversation.handler == "agent" and conversation.agent == alex.email
    assert messages[-1].content == "Alex joined the conversation."
    widget = watch_customer(support, conversation)
    await support.customer_send(cid, "hello?")
    frame = await console.expect("message", lambda f: f["message"]["content"] == "hello?")
    assert frame["conversation_id"] == cid
    await support.agent_send(alex, cid, "Hi Ann, Alex here.")
    seen = await widget.expect("message", lambda f: f["message"]["kind"] == "agent")
    assert seen["message"]["sender_name"] == "Alex"
    assert seen["message"]["sender"] == "agent", "customers never see agents' emails"
    await support.wait_idle()
    assert "bot" not in await kinds(support, cid)
    stored = await current(support, cid)
    assert stored.first_responder == alex.email and stored.first_response_secs is not None


async def test_switching_routing_takes_effect_for_the_next_message(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="bot")
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    await support.customer_send(cid, "hello")
    await support.wait_idle()
    assert await kinds(support, cid) == ["system", "customer", "bot"]

    await support.orgs.update_settings(org.org_id, {"routing": "agent"})
    await support.customer_send(cid, "I have a question")
    await support.wait_idle()
    after = await current(support, cid)
    assert after.handler == "agent" and after.agent == alex.email
    assert await kinds(support, cid) == ["system", "customer", "bot", "customer", "system"]

    await support.orgs.update_settings(org.org_id, {"routing": "bot"})
    await support.customer_send(cid, "thanks")
    await support.wait_idle()
    back = await current(support, cid)
    assert back.handler == "bot" and back.agent is None
    assert (await kinds(support, cid))[-2:] == ["customer", "bot"]


async def test_a_conversation_keeps_its_agent_while_they_are_online(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    alex_console = await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    bea = await make_agent(services, support, org, "Bea")
    await go_online(support, bea)  # Bea has no load at all, but Alex is online
    await support.customer_send(cid, "one")
    assert (await current(support, cid)).agent == alex.email
    await go_offline(support, alex_console, alex)  # no grace in tests: reassigned at once
    moved = await current(support, cid)
    assert moved.handler == "agent" and moved.agent == bea.email
    assert moved.agents == [alex.email, bea.email]


async def test_an_agent_keeps_conversations_through_a_reload(
        support: SupportService, services: Services) -> None:
    support.presence.grace_secs = 30
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    bea = await make_agent(services, support, org, "Bea")
    alex_console = await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    await go_online(support, bea)
    await go_offline(support, alex_console, alex)
    await support.customer_send(conversation.conversation_id, "still there?")
    assert (await current(support, conversation.conversation_id)).agent == alex.email
    await go_online(support, alex)  # back within the grace period
    assert (await current(support, conversation.conversation_id)).agent == alex.email


async def test_with_no_agent_online_the_customer_is_queued_until_one_comes(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    conversation, _, messages = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    assert conversation.handler == "queued"
    assert messages[-1].content == QUEUED_TEXT
    await support.customer_send(cid, "hello?")
    await support.customer_send(cid, "anyone?")
    texts = [m["content"] for m in await messages_of(support, cid)]
    assert texts.count(QUEUED_TEXT) == 1, "told once, not on every message"
    console = await go_online(support, alex)
    assigned = await current(support, cid)
    assert assigned.handler == "agent" and assigned.agent == alex.email
    await console.expect("conversation", lambda f: f["conversation"]["agent"] == alex.email)
    # The wait counts toward the first-response time.
    clock_of(support).advance(42)
    await support.agent_send(alex, cid, "Sorry for the wait!")
    assert (await current(support, cid)).first_response_secs == pytest.approx(42, abs=0.01)


async def test_queued_customers_are_spread_over_the_agent_who_comes_online(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    ids = []
    for n in range(3):
        conversation, _, _ = await support.start_session(org, f"C{n}", f"c{n}@x.test")
        ids.append(conversation.conversation_id)
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    assert [(await current(support, cid)).agent for cid in ids] == [alex.email] * 3


async def test_asking_for_a_person_hands_the_customer_to_an_agent(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="bot")
    alex = await make_agent(services, support, org, "Alex")
    console = await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    await support.customer_send(cid, "I want to talk to a real person")
    await support.wait_idle()
    handed = await current(support, cid)
    assert handed.mode == "agent" and handed.handler == "agent" and handed.agent == alex.email
    messages = await messages_of(support, cid)
    assert [m["kind"] for m in messages][-3:] == ["customer", "bot", "system"]
    assert messages[-1]["content"] == "Alex joined the conversation."
    await console.expect("conversation", lambda f: f["conversation"]["agent"] == alex.email)
    # From now on the bot stays quiet, though the org's routing is still "bot".
    await support.customer_send(cid, "hello Alex")
    await support.wait_idle()
    assert (await kinds(support, cid))[-1] == "customer"


async def test_asking_for_a_person_with_nobody_online_queues(support: SupportService) -> None:
    org = await make_org(support, routing="bot")
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    await support.customer_send(conversation.conversation_id, "agent please")
    await support.wait_idle()
    queued = await current(support, conversation.conversation_id)
    assert queued.handler == "queued" and queued.mode == "agent"
    assert (await messages_of(support, conversation.conversation_id))[-1]["content"] \
        == QUEUED_TEXT


async def test_an_agent_takes_over_from_the_bot_and_hands_back(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="bot")
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    await support.customer_send(cid, "hello")
    await support.wait_idle()
    with pytest.raises(Conflict):
        await support.agent_send(alex, cid, "not yet mine")

    taken = await support.take_over(alex, cid)
    assert (taken.mode, taken.handler, taken.agent) == ("agent", "agent", alex.email)
    await support.customer_send(cid, "what are your opening hours")
    await support.wait_idle()
    assert (await kinds(support, cid))[-1] == "customer", "the bot no longer answers"
    await support.agent_send(alex, cid, "9 to 6!")

    back = await support.hand_back(alex, cid)
    assert (back.mode, back.handler, back.agent) == ("bot", "bot", None)
    with pytest.raises(Conflict):
        await support.agent_send(alex, cid, "no longer mine")
    await support.customer_send(cid, "what are your opening hours")
    await support.wait_idle()
    assert (await kinds(support, cid))[-1] == "bot"


async def test_hand_back_stays_with_the_bot_even_under_agent_routing(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    await support.hand_back(alex, cid)
    await support.customer_send(cid, "hello")
    await support.wait_idle()
    assert (await current(support, cid)).handler == "bot"
    assert (await kinds(support, cid))[-1] == "bot"


async def test_transfer_to_another_online_agent(support: SupportService,
                                                services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    bea = await make_agent(services, support, org, "Bea")
    cem = await make_agent(services, support, org, "Cem")
    alex_console = await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    bea_console = await go_online(support, bea)
    with pytest.raises(Conflict) as offline:
        await support.transfer(alex, cid, cem.email)
    assert offline.value.code == "agent_offline"
    with pytest.raises(Conflict):
        await support.transfer(bea, cid, bea.email)  # not Bea's to give
    with pytest.raises(NotFound):
        await support.transfer(alex, cid, "stranger@x.test")

    moved = await support.transfer(alex, cid, bea.email)
    assert moved.agent == bea.email and moved.agents == [alex.email, bea.email]
    await bea_console.expect("conversation", lambda f: f["conversation"]["agent"] == bea.email)
    await alex_console.expect("conversation",
                              lambda f: f["conversation"]["agent"] == bea.email)
    with pytest.raises(Conflict):
        await support.agent_send(alex, cid, "mine?")
    await support.agent_send(bea, cid, "Bea here")
    with pytest.raises(Conflict):
        await support.take_over(alex, cid)  # Bea is online and answering


async def test_closing_ends_the_session_for_the_customer(support: SupportService,
                                                         services: Services) -> None:
    org = await make_org(support, routing="agent")
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    widget = watch_customer(support, conversation)
    closed = await support.close(alex, conversation.conversation_id)
    assert closed.status == "ended" and closed.end_reason == "closed"
    frame = await widget.expect("session", lambda f: f["session"]["status"] == "ended")
    assert "closed" in frame["detail"]
    with pytest.raises(SessionEnded):
        await support.customer_send(conversation.conversation_id, "wait!")
    with pytest.raises(SessionEnded):
        await support.agent_send(alex, conversation.conversation_id, "bye")


async def test_agents_only_reach_their_own_org(support: SupportService,
                                               services: Services) -> None:
    mine = await make_org(support, routing="agent")
    theirs = await make_org(support, routing="agent")
    alex = await make_agent(services, support, mine, "Alex")
    zed = await make_agent(services, support, theirs, "Zed")
    await go_online(support, zed)
    conversation, _, _ = await support.start_session(theirs, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    for attempt in (support.conversation_for(alex, cid), support.take_over(alex, cid),
                    support.close(alex, cid), support.agent_send(alex, cid, "hi")):
        with pytest.raises(NotFound):
            await attempt
    assert await support.list_conversations(alex, scope="queued") == []
    assert [c.conversation_id for c in await support.list_conversations(zed, scope="mine")] \
        == [cid]


async def test_the_dashboard_shows_load_and_first_responses(support: SupportService,
                                                            services: Services) -> None:
    org = await make_org(support, routing="agent")
    boss = await make_agent(services, support, org, "Boss", role="admin")
    alex = await make_agent(services, support, org, "Alex")
    await go_online(support, alex)
    first, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    await support.start_session(org, "Ben", "ben@x.test")
    clock_of(support).advance(30)
    await support.agent_send(alex, first.conversation_id, "hi")
    with pytest.raises(Exception) as refused:
        await support.dashboard(alex)
    assert getattr(refused.value, "status", None) == 403
    board = await support.dashboard(boss)
    assert board["with_agents"] == 2 and board["queue"] == 0
    assert {c["customer"]["name"] for c in board["active"]} == {"Ann", "Ben"}
    row = next(a for a in board["agents"] if a["email"] == alex.email)
    assert row["online"] is True and row["active_conversations"] == 2
    assert row["first_response_avg_secs"] == 30.0 and row["first_responses"] == 1
