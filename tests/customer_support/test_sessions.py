"""Widget sessions: creation, tokens, the timeout to the millisecond, the sweeper, resuming."""

from __future__ import annotations

import asyncio

import pytest

from tests.customer_support.conftest import (
    clock_of,
    current,
    make_org,
    messages_of,
    watch_customer,
)
from whatsease.errors import Unauthorized
from whatsease.services import Services
from whatsease.support.service import SessionEnded, SupportService

TIMEOUT = 300


async def test_a_session_starts_with_the_greeting_and_a_secret_token(
        support: SupportService) -> None:
    org = await make_org(support, greeting="Welcome to the shop!")
    conversation, token, messages = await support.start_session(org, "Ann", "ann@x.test")
    assert conversation.active and conversation.handler == "bot"
    assert conversation.customer_name == "Ann" and conversation.customer_email == "ann@x.test"
    assert [(m.kind, m.content) for m in messages] == [("system", "Welcome to the shop!")]
    assert token.startswith(conversation.conversation_id + ".") and len(token) > 60
    stored = await current(support, conversation.conversation_id)
    assert token not in str(stored.to_doc()), "only the token's hash is stored"
    found = await support.authenticate_customer(token, org.org_id)
    assert found.conversation_id == conversation.conversation_id
    assert (conversation.expires_at - conversation.created_at).total_seconds() == TIMEOUT


async def test_a_wrong_or_foreign_token_opens_nothing(support: SupportService) -> None:
    org = await make_org(support)
    other = await make_org(support)
    conversation, token, _ = await support.start_session(org, "Ann", "ann@x.test")
    for bad in ("", "nonsense", conversation.conversation_id + ".wrong",
                token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 300):
        with pytest.raises(Unauthorized):
            await support.authenticate_customer(bad)
    with pytest.raises(Unauthorized):
        await support.authenticate_customer(token, other.org_id)


async def test_the_session_ends_at_exactly_the_timeout(support: SupportService) -> None:
    clock = clock_of(support)
    org = await make_org(support)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    clock.advance(TIMEOUT - 0.001)
    assert (await support.refresh(conversation)).active
    clock.advance(0.001)  # exactly 300 s after the last message
    ended = await support.refresh(conversation)
    assert ended.status == "ended" and ended.end_reason == "timeout"
    with pytest.raises(SessionEnded) as refused:
        await support.customer_send(cid, "are you there?")
    assert refused.value.status == 410 and refused.value.code == "session_ended"
    assert "5 minutes without messages" in refused.value.detail
    assert "are you there?" not in [m["content"] for m in await messages_of(support, cid)]


async def test_a_message_at_the_last_millisecond_keeps_the_session_alive(
        support: SupportService) -> None:
    clock = clock_of(support)
    org = await make_org(support, routing="agent")  # no bot reply to move the window
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    clock.advance(TIMEOUT - 0.001)
    await support.customer_send(cid, "still here")
    clock.advance(TIMEOUT - 0.001)
    resumed, messages = await support.customer_view(conversation)
    assert resumed.active
    assert [m.content for m in messages if m.kind == "customer"] == ["still here"]
    clock.advance(0.001)
    with pytest.raises(SessionEnded):
        await support.customer_send(cid, "too late")


async def test_bot_replies_count_as_messages_in_the_other_direction(
        support: SupportService) -> None:
    clock = clock_of(support)
    org = await make_org(support)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    clock.advance(100)
    await support.customer_send(cid, "hello")
    clock.advance(50)  # the bot answers 50 s later (the clock stands still meanwhile)
    await support.wait_idle()
    after = await current(support, cid)
    assert [m["kind"] for m in await messages_of(support, cid)] == ["system", "customer", "bot"]
    assert after.last_message_at == clock.now
    assert (after.expires_at - clock.now).total_seconds() == TIMEOUT


async def test_the_sweeper_ends_idle_sessions_on_its_own(support: SupportService,
                                                         services: Services) -> None:
    clock = clock_of(support)
    org = await make_org(support)
    idle, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    widget = watch_customer(support, idle)
    clock.advance(120)
    busy, _, _ = await support.start_session(org, "Ben", "ben@x.test")
    support.sweep_interval = 0.05
    support.wake_sweeper()
    clock.advance(TIMEOUT - 120)  # Ann's timeout has come; Ben has 120 s left
    ended = await widget.expect("session", lambda f: f["session"]["status"] == "ended")
    assert ended["session"]["end_reason"] == "timeout"
    assert "ended after 5 minutes without messages" in ended["detail"]
    assert (await current(support, idle.conversation_id)).status == "ended"
    assert (await current(support, busy.conversation_id)).status == "active"
    await services.activity.drain()
    entries = await services.store.activity.list_for(
        f"customer:{idle.customer_email}", before=None, limit=20)
    assert "support.session_expired" in [e.kind for e in entries]


async def test_the_sweeper_does_not_end_a_session_early(support: SupportService) -> None:
    clock = clock_of(support)
    org = await make_org(support)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    clock.advance(TIMEOUT - 0.001)
    assert await support.expire_due() == 0
    clock.advance(0.001)
    assert await support.expire_due() == 1
    assert await support.expire_due() == 0  # once only
    assert (await current(support, conversation.conversation_id)).end_reason == "timeout"


async def test_the_org_timeout_setting_is_used(support: SupportService) -> None:
    clock = clock_of(support)
    org = await make_org(support, session_timeout=60)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    clock.advance(59.999)
    assert (await support.refresh(conversation)).active
    clock.advance(0.001)
    assert not (await support.refresh(conversation)).active


async def test_a_customer_may_end_the_conversation(support: SupportService) -> None:
    org = await make_org(support)
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    widget = watch_customer(support, conversation)
    ended = await support.customer_end(conversation)
    assert ended.end_reason == "customer"
    await widget.expect("session", lambda f: f["session"]["status"] == "ended")
    with pytest.raises(SessionEnded):
        await support.customer_send(conversation.conversation_id, "hi")


async def test_concurrent_sends_near_the_timeout_are_either_stored_or_refused(
        support: SupportService) -> None:
    """Never stored-but-ended: a message is kept only if the session was alive for it."""
    clock = clock_of(support)
    org = await make_org(support, routing="agent")
    conversation, _, _ = await support.start_session(org, "Ann", "ann@x.test")
    cid = conversation.conversation_id
    clock.advance(TIMEOUT)
    results = await asyncio.gather(
        support.customer_send(cid, "one"), support.expire_due(), return_exceptions=True)
    assert isinstance(results[0], SessionEnded)
    assert "one" not in [m["content"] for m in await messages_of(support, cid)]
