"""Instances on a real platform provider (WhatsApp, against a fake Graph API); metrics."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.channels import payloads
from tests.chatbots.helpers import create, put_chatbots, status, wait_replies, webhook
from tests.customer_support.http import platform_admin
from tests.fakes.platforms import FakeGraphAPI, FakeLoopbackPeer, FakeTelegramAPI
from tests.support import Client, ServerThread, User, wait_for
from whatsease.timeutil import utcnow

APP_SECRET = "app-secret-" + secrets.token_hex(6)
TOKEN = "EAAG-" + secrets.token_hex(10)
VERIFY = "verify-" + secrets.token_hex(4)


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    fake = FakeGraphAPI().start()
    yield fake
    fake.stop()


def test_a_whatsapp_instance_verifies_answers_and_links(server: ServerThread,
                                                        graph: FakeGraphAPI) -> None:
    root = platform_admin(server)
    res = put_chatbots(root, [{
        "user_id": "wa_shop", "respond_to_whitelist": [],
        "chat_provider_config": {"provider_name": "whatsapp_cloud", "provider_config": {
            "app_secret": APP_SECRET, "verify_token": VERIFY, "token": TOKEN,
            "phone_number_id": payloads.PHONE_NUMBER_ID, "graph_url": graph.graph_url,
            "display_number": "+" + payloads.DISPLAY_NUMBER}},
        "queue_config": {"max_messages": 10, "max_characters": 2000, "max_days": 1},
        "llm_provider_config": {"provider_name": "fake",
                                "provider_config": {"reply": "Shop bot: {text}"}}}])
    assert res.status == 200, res.body
    assert TOKEN not in res.body.decode()
    instance = res.json[0]["instance_id"]
    path = f"/channels/whatsapp_cloud/webhook/{instance}"
    client = Client(server.port)

    # Meta's subscription check, both ways.
    ok = client.get(f"{path}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=42")
    assert ok.status == 200 and ok.body == b"42"
    wrong = client.get(f"{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42")
    assert wrong.status == 403

    number = payloads.new_number()
    body = payloads.body_of(payloads.envelope(payloads.inbound(
        number, payloads.text(number, "do you ship to Lyon?"))))
    unsigned = client.request("POST", path, body=body,
                              headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    signed = client.request("POST", path, body=body, headers={
        "Content-Type": "application/json",
        "X-Hub-Signature-256": payloads.sign(APP_SECRET, body)})
    assert signed.status == 200, signed.body
    (sent,) = graph.wait_for(lambda r: r.path.endswith(f"/{payloads.PHONE_NUMBER_ID}/messages")
                             and isinstance(r.body, dict) and r.body.get("to") == number)
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body["messaging_product"] == "whatsapp"
    assert sent.body["text"]["body"] == "Shop bot: do you ship to Lyon?"
    (read,) = graph.wait_for(lambda r: isinstance(r.body, dict) and r.body.get("status") == "read")
    assert read.headers["authorization"] == f"Bearer {TOKEN}"

    # The reply's outcome is recorded when Graph's answer comes back, which the
    # fake logs the request before sending.
    def healthy() -> dict[str, Any] | None:
        state = status(root, instance)
        return state if state["chat_provider"]["health"] == "ok" else None

    state = wait_for(healthy, what="the chat provider's health to be ok")
    assert state["chat_provider"]["link"]["url"] == f"https://wa.me/{payloads.DISPLAY_NUMBER}"
    assert state["chat_provider"]["link"]["qr_svg"].startswith("<svg")
    assert state["queues"][0]["sender"] == f"wa:+{number}"


def _wa_instance(root: User, graph: FakeGraphAPI, user_id: str,
                 llm_config: dict[str, Any]) -> str:
    res = put_chatbots(root, [{
        "user_id": user_id,
        "chat_provider_config": {"provider_name": "whatsapp_cloud", "provider_config": {
            "app_secret": APP_SECRET, "verify_token": VERIFY, "token": TOKEN,
            "phone_number_id": payloads.PHONE_NUMBER_ID, "graph_url": graph.graph_url}},
        "queue_config": {"max_messages": 10, "max_characters": 2000, "max_days": 3},
        "llm_provider_config": {"provider_name": "fake", "provider_config": llm_config}}])
    assert res.status == 200, res.body
    return str(res.json[0]["instance_id"])


def test_an_answer_after_the_24_hour_window_closed_is_not_sent(server: ServerThread,
                                                                graph: FakeGraphAPI) -> None:
    root = platform_admin(server)
    instance = _wa_instance(root, graph, "wa_slow", {"reply": "late: {text}", "delay_ms": 1500})
    chatbots = server.services.chatbots
    assert chatbots is not None
    number = payloads.new_number()
    body = payloads.body_of(payloads.envelope(payloads.inbound(
        number, payloads.text(number, "are you open?"))))
    res = Client(server.port).request(
        "POST", f"/channels/whatsapp_cloud/webhook/{instance}", body=body,
        headers={"Content-Type": "application/json",
                 "X-Hub-Signature-256": payloads.sign(APP_SECRET, body)})
    assert res.status == 200, res.body
    # The message is queued when the webhook is answered; while the model thinks
    # (1.5 s), a day passes for the server: the answer comes too late for WhatsApp.
    chatbots.clock = lambda: utcnow() + timedelta(hours=25)
    try:
        deadline = time.monotonic() + 15
        while status(root, instance)["counts"]["outside_window"] == 0:
            assert time.monotonic() < deadline, status(root, instance)
            time.sleep(0.05)
    finally:
        chatbots.clock = utcnow
    state = status(root, instance)
    assert "customer-service window" in state["last_error"]["message"]
    assert state["counts"]["answered"] == 1
    assert graph.matching(lambda r: isinstance(r.body, dict) and r.body.get("to") == number
                          and r.body.get("status") != "read") == []


def _sample(text: str, name: str) -> float:
    """The sum of a metric's samples (all label sets) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_show_queues_tokens_and_latency(server: ServerThread) -> None:
    peer = FakeLoopbackPeer().start()
    try:
        root = platform_admin(server)
        before = Client(server.port).get("/metrics").body.decode()
        instance = create(root, peer, "metered", max_messages=1,
                          llm_config={"delay_ms": 3000})
        # "one" is being answered (its answer takes three seconds, so surely even on a
        # loaded machine) when the others arrive: "three" pushes "two" out of a
        # one-message queue.
        assert webhook(server, instance, [("olga", "one")]).status == 200
        assert webhook(server, instance, [("olga", "two"), ("olga", "three")]).status == 200
        wait_replies(peer, "olga", 3)
        after = Client(server.port).get("/metrics").body.decode()
    finally:
        peer.stop()
    assert "whatsease_chatbot_queue_depth" in after
    assert (_sample(after, "whatsease_chatbot_queue_drops_total")
            - _sample(before, "whatsease_chatbot_queue_drops_total")) == 1
    assert (_sample(after, "whatsease_chatbot_llm_tokens_total")
            > _sample(before, "whatsease_chatbot_llm_tokens_total"))
    assert (_sample(after, "whatsease_chatbot_llm_seconds_count")
            - _sample(before, "whatsease_chatbot_llm_seconds_count")) == 2


@pytest.fixture
def telegram() -> Iterator[FakeTelegramAPI]:
    fake = FakeTelegramAPI().start()
    yield fake
    fake.stop()


def test_a_telegram_instance_answers_buttons_whitelist_groups_and_redelivery(
        server: ServerThread, telegram: FakeTelegramAPI) -> None:
    root = platform_admin(server)
    bot_token = "7012345678:" + secrets.token_urlsafe(30).replace("=", "")
    secret = "tg-" + secrets.token_hex(8)
    chat, stranger = payloads.new_chat_id(), payloads.new_chat_id()
    res = put_chatbots(root, [{
        "user_id": "tg_shop", "respond_to_whitelist": [str(chat)],
        "chat_provider_config": {"provider_name": "telegram", "provider_config": {
            "token": bot_token, "secret_token": secret, "api_url": telegram.api_url}},
        "queue_config": {"max_messages": 10, "max_characters": 2000, "max_days": 1},
        "llm_provider_config": {"provider_name": "fake",
                                "provider_config": {"reply": "TG bot: {text}"}}}])
    assert res.status == 200, res.body
    assert bot_token not in res.body.decode() and secret not in res.body.decode()
    instance = res.json[0]["instance_id"]
    path = f"/channels/telegram/webhook/{instance}"
    client = Client(server.port)

    def post(update: dict[str, Any], token: str | None = secret) -> int:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        return client.request("POST", path, body=payloads.body_of(update),
                              headers=headers).status

    def sent_to(who: int) -> list[str]:
        return [r.body["text"] for r in telegram.calls("sendMessage")
                if isinstance(r.body, dict) and r.body.get("chat_id") == who]

    assert post(payloads.tg_text(chat, "hi"), token=None) == 401
    assert post(payloads.tg_text(chat, "hi"), token="not-the-secret") == 401
    first = payloads.tg_text(chat, "do you deliver?")
    assert post(first) == 200
    (call,) = telegram.wait_for(lambda r: r.path.endswith("/sendMessage"))
    assert call.path == f"/bot{bot_token}/sendMessage"
    assert call.body == {"chat_id": chat, "text": "TG bot: do you deliver?"}

    # A pressed inline button is acknowledged and answered by its label.
    assert post(payloads.tg_callback(chat, "sku-42", "Blue boots")) == 200
    telegram.wait_for(lambda r: r.path.endswith("/sendMessage"), count=2)
    assert sent_to(chat) == ["TG bot: do you deliver?", "TG bot: Blue boots"]
    telegram.wait_for(lambda r: r.path.endswith("/answerCallbackQuery"))

    # Telegram delivers the first update again: answered once all the same.
    assert post(first) == 200
    # Not on the whitelist, and a group message: no answer (ignored, counted).
    assert post(payloads.tg_text(stranger, "hello?")) == 200
    group = payloads.tg_text(chat, "hello group")
    group["message"]["chat"] = {"id": -100 - stranger, "title": "Shoe fans", "type": "group"}
    assert post(group) == 200
    state = _status_when_counts(root, instance, lambda c: c["ignored"] == 2)
    assert state["counts"]["answered"] == 2 and state["counts"]["received"] == 2
    assert state["chat_provider"]["health"] == "ok"
    assert state["queues"][0]["sender"] == f"tg:{chat}"
    assert sent_to(chat) == ["TG bot: do you deliver?", "TG bot: Blue boots"]
    assert sent_to(stranger) == [] and sent_to(-100 - stranger) == []


def _status_when_counts(root: User, instance: str, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        state = status(root, instance)
        if ready(state["counts"]):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.02)
