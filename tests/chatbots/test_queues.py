"""Instances answering through a real server: webhooks in, the loopback peer's replies out."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chatbots.helpers import (
    create,
    entry,
    post_signed,
    replies_to,
    status,
    wait_replies,
    webhook,
)
from tests.customer_support.http import platform_admin
from tests.fake_completions import FakeCompletions
from tests.fakes.platforms import FakeLoopbackPeer
from tests.support import Client, ServerThread, wait_for
from whatsease.channels.base import InboundMessage
from whatsease.chatbots.runtime import POLITE_DROPPED, POLITE_ERROR
from whatsease.chatbots.service import get_chatbots
from whatsease.storage.chatbots import QUEUE

GATE_SECS = 10.0


class GatedCompletions(FakeCompletions):
    """A model that answers at once, except messages containing "slow", which wait for
    ``open`` (or `GATE_SECS`): a slow LLM, as a real local HTTP server."""

    def __init__(self, gated: Callable[[str], bool] = lambda text: "slow" in text) -> None:
        self.gate = threading.Event()

        def answer(body: dict[str, Any]) -> str:
            text = body["messages"][-1]["content"]
            if gated(text):
                self.gate.wait(GATE_SECS)
            return f"Model: {text}"

        super().__init__(answer)


@pytest.fixture
def model() -> Iterator[GatedCompletions]:
    fake = GatedCompletions()
    fake.start()
    yield fake
    fake.gate.set()
    fake.stop()


def _queued(server: ServerThread, instance_id: str) -> int:
    async def count() -> int:
        return int(await server.services.store.db[QUEUE].count_documents(
            {"instance": instance_id}))
    return server.call(count())


def test_only_signed_webhooks_are_queued(server: ServerThread, peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "signed")
    refused = webhook(server, instance, [("erin", "let me in")], secret="wrong secret")
    assert refused.status == 401
    body = b'{"messages": [{"id": "x1", "from": "erin", "text": "no signature"}]}'
    unsigned = Client(server.port).request(
        "POST", f"/channels/loopback/webhook/{instance}", body=body,
        headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    assert _queued(server, instance) == 0 and status(root, instance)["counts"]["received"] == 0
    wrong_provider = Client(server.port).request(
        "POST", f"/channels/telegram/webhook/{instance}", body=body,
        headers={"Content-Type": "application/json"})
    assert wrong_provider.status == 404
    assert webhook(server, instance, [("erin", "hello")]).status == 200
    assert wait_replies(peer, "erin", 1) == ["You said: hello"]


def test_redelivered_messages_are_answered_once(server: ServerThread,
                                                peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "dedup")
    body = b'{"messages": [{"id": "same-id", "from": "fay", "text": "once"}]}'
    for _ in range(3):
        assert post_signed(server, instance, body).status == 200
    assert wait_replies(peer, "fay", 1) == ["You said: once"]
    time.sleep(0.3)  # a second answer would have been sent by now
    assert replies_to(peer, "fay") == ["You said: once"]
    assert status(root, instance)["counts"]["received"] == 1


def test_whitelist_and_group_messages(server: ServerThread, peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "picky", whitelist=["gina"])
    assert webhook(server, instance, [("stranger", "hi"), ("gina", "hi")]).status == 200
    assert wait_replies(peer, "gina", 1) == ["You said: hi"]
    assert replies_to(peer, "stranger") == []
    assert status(root, instance)["counts"]["ignored"] == 1

    service = get_chatbots(server.services)

    def group_message(sender: str) -> InboundMessage:
        return InboundMessage(channel="loopback", message_id=secrets.token_hex(6),
                              sender=sender, kind="text", text="in a group",
                              timestamp=datetime.now(UTC), chat_id="lb:group-1", is_group=True)

    assert server.call(service.receive(instance, group_message("lb:gina"))) == "ignored_group"
    open_groups = create(root, peer, "social", allow_groups=True)
    assert server.call(service.receive(open_groups, group_message("lb:gina"))) == "queued"
    # The answer goes to the group, not to the sender alone.
    assert wait_replies(peer, "group-1", 1) == ["You said: in a group"]


def test_each_sender_in_order_and_senders_side_by_side(server: ServerThread,
                                                       peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "busy", llm_config={"delay_ms": 1000})
    senders = [f"s{n}" for n in range(4)]
    per_sender = 3
    batch = [(sender, f"{sender} message {i}") for i in range(per_sender) for sender in senders]
    assert webhook(server, instance, batch).status == 200
    for sender in senders:
        assert wait_replies(peer, sender, per_sender, timeout=30) == [
            f"You said: {sender} message {i}" for i in range(per_sender)]
    # Side by side: every sender's first answer (each takes the model a second)
    # arrived before any sender's second one. One after the other, the fourth
    # sender's first answer would have come after the first sender's third.
    texts = [r.body["text"] for r in peer.requests]
    firsts = [texts.index(f"You said: {sender} message 0") for sender in senders]
    seconds = [texts.index(f"You said: {sender} message 1") for sender in senders]
    assert max(firsts) < min(seconds), texts
    assert status(root, instance)["counts"]["answered"] == len(batch)


def test_a_full_queue_drops_the_oldest_and_tells_the_sender(server: ServerThread,
                                                            peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    # m1 is answered slowly enough that m2-m6 surely arrive while it is, even under load.
    instance = create(root, peer, "small", max_messages=3, llm_config={"delay_ms": 3000})
    assert webhook(server, instance, [("hana", "m1")]).status == 200
    wait_for(lambda: status(root, instance)["queue_depth"] == 1, what="m1 queued")
    assert webhook(server, instance, [("hana", f"m{n}") for n in range(2, 7)]).status == 200
    replies = wait_replies(peer, "hana", 5, timeout=60)
    # m1 was being answered; m2 and m3 were dropped to keep three entries; one notice.
    assert replies.count(POLITE_DROPPED) == 1
    assert [r for r in replies if r != POLITE_DROPPED] == [
        "You said: m1", "You said: m4", "You said: m5", "You said: m6"]
    state = status(root, instance)
    assert state["counts"]["dropped"] == 2 and state["queue_depth"] == 0
    assert all(q["entries"] <= 3 for q in state["queues"])


# A queue that keeps messages for this many days (1.7 s): older ones are trimmed.
SHORT_DAYS = 0.00002


@pytest.mark.parametrize("bound", ["characters", "age"])
def test_a_queue_bounded_by_characters_or_age_drops_the_oldest(
        server: ServerThread, peer: FakeLoopbackPeer, model: GatedCompletions,
        bound: str) -> None:
    root = platform_admin(server)
    limits = ({"max_characters": 40} if bound == "characters"
              else {"max_days": SHORT_DAYS})
    instance = create(root, peer, f"bounded-{bound}", llm="openai_compatible",
                      llm_config={"url": model.url, "timeout": GATE_SECS + 5},
                      max_messages=100, **limits)
    # The first question waits at the model's gate while the others come.
    assert webhook(server, instance, [("sam", "slow first")]).status == 200
    wait_for(lambda: len(model.requests) == 1, what="the first question asked")
    if bound == "characters":
        # 10 + 4 x 11 characters: the in-flight question goes (not a drop), then m2 does.
        later = ["m2 34567890", "m3 34567890", "m4 34567890", "m5 34567890"]
        assert webhook(server, instance, [("sam", t) for t in later]).status == 200
    else:
        assert webhook(server, instance, [("sam", "m2 old")]).status == 200
        time.sleep(SHORT_DAYS * 86400 + 0.5)   # m2 (and the in-flight one) grow too old
        later = ["m2 old", "m3 new"]
        assert webhook(server, instance, [("sam", "m3 new")]).status == 200
    wait_for(lambda: status(root, instance)["counts"]["dropped"] == 1, what="one drop")
    model.gate.set()
    expected = ["Model: slow first"] + [f"Model: {t}" for t in later[1:]]
    replies = wait_replies(peer, "sam", len(expected) + 1, timeout=60)
    assert replies.count(POLITE_DROPPED) == 1
    assert [r for r in replies if r != POLITE_DROPPED] == expected
    state = status(root, instance)
    assert state["counts"]["dropped"] == 1 and state["queue_depth"] == 0


def test_a_slow_model_never_blocks_other_senders(server: ServerThread, peer: FakeLoopbackPeer,
                                                 model: GatedCompletions) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "llm", llm="openai_compatible",
                      llm_config={"url": model.url, "timeout": GATE_SECS + 5})
    assert webhook(server, instance, [("ivy", "slow question")]).status == 200
    wait_for(lambda: len(model.requests) == 1, what="the slow request")
    started = time.monotonic()
    assert webhook(server, instance, [("jack", "quick one")]).status == 200
    assert wait_replies(peer, "jack", 1, timeout=5) == ["Model: quick one"]
    health = Client(server.port).get("/healthz")
    assert health.status == 200
    # Blocked behind ivy's request, jack would wait for the gate (GATE_SECS).
    assert time.monotonic() - started < GATE_SECS / 2
    assert replies_to(peer, "ivy") == []
    assert status(root, instance)["queue_depth"] == 1
    model.gate.set()
    assert wait_replies(peer, "ivy", 1) == ["Model: slow question"]


def test_a_provider_error_gives_a_polite_answer(server: ServerThread,
                                                peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "broken", llm_config={"fail": True})
    assert webhook(server, instance, [("kim", "hello?")]).status == 200
    assert wait_replies(peer, "kim", 1) == [POLITE_ERROR]
    state = status(root, instance)
    assert state["counts"]["errors"] == 1 and state["llm_provider"]["health"] == "error"
    assert "configured to fail" in state["last_error"]["message"]


def test_queues_survive_a_restart(make_server: Callable[..., ServerThread],
                                  peer: FakeLoopbackPeer, model: GatedCompletions) -> None:
    settings = {"db_name": f"t{secrets.token_hex(6)}", "jwt_secret": secrets.token_urlsafe(48)}
    first = make_server(**settings)
    root = platform_admin(first)
    instance = create(root, peer, "durable", llm="openai_compatible",
                      llm_config={"url": model.url, "timeout": GATE_SECS + 5})
    assert webhook(first, instance, [("lee", "slow one"), ("lee", "slow two")]).status == 200
    wait_for(lambda: len(model.requests) == 1, what="the first question asked")
    first.stop()
    model.gate.set()
    assert replies_to(peer, "lee") == []

    second = make_server(**settings)
    assert wait_replies(peer, "lee", 2) == ["Model: slow one", "Model: slow two"]
    state = status(Client(second.port, root.access_token), instance)
    assert state["counts"]["answered"] == 2 and state["queue_depth"] == 0


def test_a_new_server_secret_asks_for_the_keys_again(make_server: Callable[..., ServerThread],
                                                     peer: FakeLoopbackPeer) -> None:
    db_name = f"t{secrets.token_hex(6)}"
    first = make_server(db_name=db_name, jwt_secret=secrets.token_urlsafe(48))
    root = platform_admin(first)
    instance = create(root, peer, "rotated")
    first.stop()

    second = make_server(db_name=db_name, jwt_secret=secrets.token_urlsafe(48))
    login = Client(second.port).post("/api/v1/auth/login",
                                     {"email": root.email, "password": root.password})
    assert login.status == 200, login.body
    client = Client(second.port, login.json["access_token"])
    state = status(client, instance)
    assert state["state"] == "error" and "send the provider keys again" in state["problem"]
    assert webhook(second, instance, [("pat", "hello?")]).status == 404
    again = client.request("PUT", "/api/v1/chatbots", [entry(peer, "rotated")])
    assert again.status == 200 and again.json[0]["instance_id"] == instance
    assert status(client, instance)["state"] == "running"
    assert webhook(second, instance, [("pat", "hello?")]).status == 200
    assert wait_replies(peer, "pat", 1) == ["You said: hello?"]
