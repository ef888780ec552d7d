"""Telegram channel against a running server and a fake Bot API (real HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.channels import payloads
from tests.channels.conftest import (
    TG_SECRET,
    TG_TOKEN,
    Platforms,
    channels,
    history,
    outbox,
    post_telegram,
    run,
    settle,
)
from tests.fakes.platforms import Recorded
from tests.support import ServerThread
from whatsease.channels import metrics
from whatsease.channels.base import Button, OutboundMessage, ProviderContext, build_provider
from whatsease.channels.telegram import TelegramProvider
from whatsease.net.outbound import OutboundPolicy


def _sent_to(chat_id: int) -> Any:
    def match(r: Recorded) -> bool:
        return (r.path == f"/bot{TG_TOKEN}/sendMessage" and isinstance(r.body, dict)
                and r.body.get("chat_id") == chat_id)
    return match


@pytest.mark.parametrize("secret", [None, "wrong-secret", TG_SECRET + "x"])
def test_wrong_or_missing_secret_token_is_401_and_nothing_stored(
        channel_server: ServerThread, platforms: Platforms, secret: str | None) -> None:
    chat = payloads.new_chat_id()
    res = post_telegram(channel_server, payloads.tg_text(chat, "hi"), secret=secret)
    assert res.status == 401 and res.json["type"].endswith("bad_signature")
    settle(channel_server)
    assert history(channel_server, f"tg:{chat}") == []
    assert run(channel_server, channels(channel_server).store.contact(f"tg:{chat}")) is None
    assert platforms.telegram.matching(_sent_to(chat)) == []


def test_text_is_stored_and_answered_with_send_message(channel_server: ServerThread,
                                                      platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    update = payloads.tg_text(chat, "hello", reply_to=12)
    res = post_telegram(channel_server, update)
    assert res.status == 200 and res.json == {"accepted": 1}
    (reply,) = platforms.telegram.wait_for(_sent_to(chat))
    assert reply.method == "POST" and isinstance(reply.body["text"], str) and reply.body["text"]
    settle(channel_server)
    first, answer = history(channel_server, f"tg:{chat}")
    assert first.sender == f"tg:{chat}" and first.content == "hello"
    assert first.extra["channel"] == "telegram" and first.extra["reply_to"] == "12"
    assert first.extra["platform_id"] == str(update["update_id"])
    assert first.extra["sender_name"] == "Ada Lovelace"
    assert answer.sender == "bot:whatsease" and answer.content == reply.body["text"]
    (record,) = outbox(channel_server, f"tg:{chat}")
    assert record["status"] == "Sent" and record["platform_id"].startswith(f"{chat}:")


def test_redelivered_update_is_processed_once(channel_server: ServerThread,
                                              platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    update = payloads.tg_text(chat, "hello")
    for _ in range(3):
        assert post_telegram(channel_server, update).status == 200
    platforms.telegram.wait_for(_sent_to(chat))
    settle(channel_server)
    assert len(platforms.telegram.matching(_sent_to(chat))) == 1
    assert [m.sender for m in history(channel_server, f"tg:{chat}")] == [f"tg:{chat}",
                                                                         "bot:whatsease"]


def test_callback_button_is_a_button_reply_and_is_acknowledged(channel_server: ServerThread,
                                                               platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    update = payloads.tg_callback(chat, "size-m", "Medium")
    assert post_telegram(channel_server, update).status == 200
    platforms.telegram.wait_for(
        lambda r: r.path.endswith("/answerCallbackQuery")
        and r.body == {"callback_query_id": update["callback_query"]["id"]})
    settle(channel_server)
    pressed = history(channel_server, f"tg:{chat}")[0]
    assert pressed.content == "Medium" and pressed.extra["channel_kind"] == "button_reply"
    assert pressed.extra["choice_id"] == "size-m" and pressed.extra["reply_to"] == "77"


def test_every_pressed_button_is_acknowledged_even_when_several_wait(
        channel_server: ServerThread, platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    presses = [payloads.tg_callback(chat, f"size-{s}", s.upper()) for s in ("s", "m", "l")]
    service = channels(channel_server)
    channel = service.channel("telegram")
    events = [e for update in presses for e in channel.provider.parse(payloads.body_of(update))]

    async def arrive_together() -> None:
        service.accept(channel, events)     # one contact's lane holds all three at once

    run(channel_server, arrive_together())
    ids = {p["callback_query"]["id"] for p in presses}
    answered = platforms.telegram.wait_for(
        lambda r: r.path.endswith("/answerCallbackQuery") and isinstance(r.body, dict)
        and r.body.get("callback_query_id") in ids, count=3, timeout=20)
    assert {r.body["callback_query_id"] for r in answered} == ids


def test_location_photo_and_reaction(channel_server: ServerThread) -> None:
    chat = payloads.new_chat_id()
    for update in (payloads.tg_location(chat), payloads.tg_photo(chat),
                   payloads.tg_reaction(chat, 5, "\U0001f525")):
        assert post_telegram(channel_server, update).status == 200
    settle(channel_server)
    mine = [m for m in history(channel_server, f"tg:{chat}") if m.sender == f"tg:{chat}"]
    place, photo, reaction = mine
    assert place.extra["location"]["latitude"] == pytest.approx(48.858093)
    assert photo.extra["media"]["media_id"] == "AgACAgQAAxkBAAIBlarge"   # the largest size
    assert photo.content == "Here it is"
    assert reaction.extra["emoji"] == "\U0001f525" and reaction.extra["reaction_to"] == "5"


def test_429_with_retry_after_then_success(channel_server: ServerThread,
                                           platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    platforms.telegram.fail_next(429, when=_sent_to(chat))
    post_telegram(channel_server, payloads.tg_text(chat, "hello"))
    settle(channel_server)
    assert len(platforms.telegram.matching(_sent_to(chat))) == 2
    assert outbox(channel_server, f"tg:{chat}")[0]["status"] == "Sent"


def test_403_blocked_by_the_user_is_final(channel_server: ServerThread,
                                         platforms: Platforms) -> None:
    chat = payloads.new_chat_id()
    blocked = {"ok": False, "error_code": 403,
               "description": "Forbidden: bot was blocked by the user"}
    platforms.telegram.fail_next(403, body=blocked, when=_sent_to(chat))
    post_telegram(channel_server, payloads.tg_text(chat, "hello"))
    settle(channel_server)
    (record,) = outbox(channel_server, f"tg:{chat}")
    assert record["status"] == "Failed" and record["error_code"] == 403
    assert "blocked by the user" in record["error"]
    assert len(platforms.telegram.matching(_sent_to(chat))) == 1


async def test_inline_keyboards_for_buttons_and_lists(platforms: Platforms) -> None:
    provider = build_provider("telegram", {"token": TG_TOKEN, "secret_token": TG_SECRET,
                                           "api_url": platforms.telegram.api_url},
                              ProviderContext(OutboundPolicy(allow_private=True)))
    result = await provider.send(OutboundMessage(
        to="tg:42", text="Which size?", buttons=(Button("s", "Small"), Button("m", "Medium"))))
    assert result.ok and result.message_id.startswith("42:")
    sent = platforms.telegram.matching(_sent_to(42))[-1]
    assert sent.body["reply_markup"] == {"inline_keyboard": [[
        {"text": "Small", "callback_data": "s"}, {"text": "Medium", "callback_data": "m"}]]}
    assert isinstance(provider, TelegramProvider)
    hook = await provider.set_webhook("https://chat.example.com/channels/telegram/webhook")
    assert hook.ok
    (call,) = platforms.telegram.calls("setWebhook")
    assert call.body["secret_token"] == TG_SECRET
    assert metrics.API_LATENCY.labels("telegram", "send")._sum.get() > 0
