"""WhatsApp Cloud API channel against a running server and a fake Graph API (real HTTP)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.channels import payloads
from tests.channels.conftest import (
    APP_SECRET,
    GRAPH_TOKEN,
    VERIFY_TOKEN,
    Platforms,
    channels,
    history,
    outbox,
    post_whatsapp,
    run,
    settle,
)
from tests.fakes.platforms import Recorded
from tests.support import Client, ServerThread, register
from whatsease.channels import core, metrics, receipts
from whatsease.channels.base import (
    Button,
    ListRow,
    ListSection,
    OutboundMessage,
    ProviderContext,
    StatusUpdate,
    build_provider,
)
from whatsease.net.outbound import OutboundPolicy
from whatsease.storage.channels import EARLY_RECEIPT_SECS

MESSAGES_PATH = f"/{payloads.PHONE_NUMBER_ID}/messages"


def _to(number: str) -> Any:
    def match(r: Recorded) -> bool:
        return (r.path.endswith(MESSAGES_PATH) and isinstance(r.body, dict)
                and r.body.get("to") == number and r.body.get("status") != "read")
    return match


def _replies(platforms: Platforms, number: str) -> list[Recorded]:
    return platforms.graph.matching(_to(number))


def test_verification_handshake_both_ways(channel_server: ServerThread,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client(channel_server.port)
    ok = client.get("/channels/whatsapp/webhook?hub.mode=subscribe&hub.challenge=1158201444"
                    f"&hub.verify_token={VERIFY_TOKEN}")
    assert ok.status == 200 and ok.body == b"1158201444"
    assert (ok.header("content-type") or "").startswith("text/plain")
    wrong = client.get("/channels/whatsapp/webhook?hub.mode=subscribe&hub.challenge=4242"
                       "&hub.verify_token=not-it")
    assert wrong.status == 403 and b"4242" not in wrong.body
    not_subscribe = client.get("/channels/whatsapp/webhook?hub.mode=unsubscribe"
                               f"&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}")
    assert not_subscribe.status == 403
    assert client.get("/channels/nosuch/webhook").status == 404
    # Meta sends the verify token in the query string: no log line has it, whatever
    # the logging configuration (Tornado's own access log included).
    assert caplog.records and not [r for r in caplog.records if VERIFY_TOKEN in r.getMessage()]


@pytest.mark.parametrize("how", ["missing", "wrong_secret", "tampered", "malformed"])
def test_bad_signature_is_401_and_nothing_is_stored(channel_server: ServerThread,
                                                    platforms: Platforms, how: str) -> None:
    number = payloads.new_number()
    payload = payloads.envelope(payloads.inbound(number, payloads.text(number, "hi")))
    refused = metrics.WEBHOOK_REFUSED.labels("whatsapp_cloud")._value.get()
    if how == "missing":
        res = post_whatsapp(channel_server, payload, secret=None)
    elif how == "wrong_secret":
        res = post_whatsapp(channel_server, payload, secret="not-the-app-secret")
    elif how == "tampered":
        good = payloads.sign(APP_SECRET, payloads.body_of(payload))
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "evil"
        res = post_whatsapp(channel_server, payload, signature=good)
    else:
        res = post_whatsapp(channel_server, payload, signature="sha1=abc")
    assert res.status == 401, res.body
    assert res.json["type"].endswith("bad_signature")
    settle(channel_server)
    assert metrics.WEBHOOK_REFUSED.labels("whatsapp_cloud")._value.get() == refused + 1
    assert history(channel_server, f"wa:+{number}") == []
    assert run(channel_server, channels(channel_server).store.contact(f"wa:+{number}")) is None
    assert _replies(platforms, number) == []


def test_text_is_stored_answered_by_the_bot_and_marked_read(channel_server: ServerThread,
                                                           platforms: Platforms) -> None:
    number = payloads.new_number()
    message = payloads.text(number, "hello there")
    res = post_whatsapp(channel_server, payloads.envelope(payloads.inbound(number, message)))
    assert res.status == 200 and res.json == {"accepted": 1}
    (reply,) = platforms.graph.wait_for(_to(number))
    assert reply.method == "POST" and reply.path == f"/v21.0{MESSAGES_PATH}"
    assert reply.headers["authorization"] == f"Bearer {GRAPH_TOKEN}"
    assert reply.body["messaging_product"] == "whatsapp" and reply.body["type"] == "text"
    assert reply.body["text"]["body"]
    (receipt,) = platforms.graph.wait_for(
        lambda r: isinstance(r.body, dict) and r.body.get("message_id") == message["id"])
    assert receipt.body == {"messaging_product": "whatsapp", "status": "read",
                            "message_id": message["id"]}
    settle(channel_server)
    stored = history(channel_server, f"wa:+{number}")
    assert [m.sender for m in stored] == [f"wa:+{number}", "bot:whatsease"]
    first, answer = stored
    assert first.content == "hello there" and first.recipient == "bot:whatsease"
    assert first.extra["channel"] == "whatsapp_cloud" and first.extra["channel_kind"] == "text"
    assert first.extra["platform_id"] == message["id"]
    assert first.extra["sender_name"] == "Sheena Nelson"
    assert answer.is_bot_response and answer.content == reply.body["text"]["body"]
    (sent,) = outbox(channel_server, f"wa:+{number}")
    assert sent["_id"] == answer.message_id and sent["status"] == "Sent"
    assert sent["platform_id"].startswith("wamid.FAKE")


@pytest.mark.parametrize("behind", ["status", "redelivery"])
def test_a_message_is_marked_read_whatever_follows_it_in_its_webhook(
        channel_server: ServerThread, platforms: Platforms, behind: str) -> None:
    number = payloads.new_number()
    message = payloads.text(number, "hello there")
    # Meta batches: the person's message, then a receipt of our earlier reply to
    # them (or, on a retry, the same message again), in one delivery.
    follower = (payloads.status(payloads.wamid(), number, "delivered") if behind == "status"
                else payloads.inbound(number, message))
    assert post_whatsapp(channel_server, payloads.envelope(
        payloads.inbound(number, message), follower)).status == 200
    platforms.graph.wait_for(
        lambda r: isinstance(r.body, dict) and r.body.get("status") == "read"
        and r.body.get("message_id") == message["id"], timeout=20)
    settle(channel_server)
    assert len([r for r in platforms.graph.read_receipts()
                if r.body.get("message_id") == message["id"]]) == 1


def test_redelivery_is_stored_and_answered_once(channel_server: ServerThread,
                                                platforms: Platforms) -> None:
    number = payloads.new_number()
    payload = payloads.envelope(payloads.inbound(number, payloads.text(number, "what time is it")))
    duplicates = metrics.WEBHOOK_DUPLICATES.labels("whatsapp_cloud")._value.get()
    for _ in range(3):
        assert post_whatsapp(channel_server, payload).status == 200
    platforms.graph.wait_for(_to(number))
    settle(channel_server)
    assert len(_replies(platforms, number)) == 1
    stored = history(channel_server, f"wa:+{number}")
    assert [m.sender for m in stored] == [f"wa:+{number}", "bot:whatsease"]
    assert metrics.WEBHOOK_DUPLICATES.labels("whatsapp_cloud")._value.get() == duplicates + 2


def test_every_message_type_of_a_batch(channel_server: ServerThread,
                                       platforms: Platforms) -> None:
    number, other = payloads.new_number(), payloads.new_number()
    earlier = payloads.wamid()
    messages = [
        payloads.text(number, "and this one?", context=earlier),
        payloads.button_reply(number, "yes-please", "Yes please", earlier),
        payloads.list_reply(number, "sku-42", "Blue, size M", earlier),
        payloads.reaction(number, earlier, "\U0001f44d"),
        payloads.location(number),
        payloads.image(number),
        payloads.document(number),
        payloads.unsupported(number),
        payloads.audio(number),
        payloads.video(number),
        payloads.sticker(number),
        payloads.template_button(number, "STOP_PROMOS", "Stop promotions", earlier),
    ]
    # Two entries (two senders) in one delivery: every entry and change is read.
    payload = payloads.envelope(payloads.inbound(number, *messages),
                                payloads.inbound(other, payloads.text(other, "hi"), name="Bo"))
    res = post_whatsapp(channel_server, payload)
    assert res.status == 200 and res.json == {"accepted": len(messages) + 1}
    settle(channel_server)
    stored = [m for m in history(channel_server, f"wa:+{number}")
              if m.sender == f"wa:+{number}"]
    by_id = {m.extra["platform_id"]: m for m in stored}
    assert list(by_id) == [m["id"] for m in messages]   # in the order sent
    text, button, row, react, place, image, doc, odd, voice, film, sticker, quick = (
        by_id[m["id"]] for m in messages)
    assert text.extra["reply_to"] == earlier and text.content == "and this one?"
    assert button.extra["channel_kind"] == "button_reply"
    assert button.extra["choice_id"] == "yes-please" and button.content == "Yes please"
    assert row.extra["channel_kind"] == "list_reply" and row.extra["choice_id"] == "sku-42"
    assert react.extra["channel_kind"] == "reaction" and react.extra["emoji"] == "\U0001f44d"
    assert react.extra["reaction_to"] == earlier
    assert place.extra["location"]["name"] == "Alexanderplatz"
    assert place.extra["location"]["latitude"] == pytest.approx(52.520008)
    assert image.extra["media"] == {"media_id": "1003383421387256", "type": "image",
                                    "mime_type": "image/jpeg", "filename": "",
                                    "caption": "The broken part"}
    assert image.content == "The broken part"
    assert doc.extra["media"]["filename"] == "invoice-0042.pdf"
    assert odd.extra["channel_kind"] == "unsupported" and "Message type unknown" in odd.content
    assert voice.extra["media"]["type"] == "audio" and voice.content == "(audio)"
    assert voice.extra["media"]["mime_type"] == "audio/ogg; codecs=opus"
    assert film.extra["media"] == {"media_id": "1187462095283311", "type": "video",
                                   "mime_type": "video/mp4", "filename": "",
                                   "caption": "It rattles like this"}
    assert sticker.extra["media"]["type"] == "sticker" and sticker.content == "(sticker)"
    assert sticker.extra["media"]["media_id"] == "7740213398561204"
    assert quick.extra["channel_kind"] == "button_reply" and quick.content == "Stop promotions"
    assert quick.extra["choice_id"] == "STOP_PROMOS" and quick.extra["reply_to"] == earlier
    assert all(m.extra["channel_kind"] == "media" for m in (image, doc, voice, film, sticker))
    assert history(channel_server, f"wa:+{other}")[0].sender == f"wa:+{other}"


def test_statuses_move_the_reply_forward_and_failures_keep_their_code(
        channel_server: ServerThread, platforms: Platforms) -> None:
    number = payloads.new_number()
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    platforms.graph.wait_for(_to(number))
    settle(channel_server)
    (sent,) = outbox(channel_server, f"wa:+{number}")
    wamid = sent["platform_id"]
    for state in ("sent", "delivered", "read"):
        assert post_whatsapp(channel_server, payloads.envelope(
            payloads.status(wamid, number, state))).status == 200
        settle(channel_server)
        if state != "sent":
            (record,) = outbox(channel_server, f"wa:+{number}")
            assert record["status"] == state.title()
            answer = history(channel_server, f"wa:+{number}")[-1]
            assert answer.message_id == sent["_id"] and answer.status == state.title()
    # A late "delivered" never moves it back.
    post_whatsapp(channel_server, payloads.envelope(payloads.status(wamid, number, "delivered")))
    settle(channel_server)
    assert outbox(channel_server, f"wa:+{number}")[0]["status"] == "Read"

    # A second reply fails on the phone's side: Failed with the platform's code.
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "thanks"))))
    platforms.graph.wait_for(_to(number), count=2)
    settle(channel_server)
    second = outbox(channel_server, f"wa:+{number}")[-1]
    post_whatsapp(channel_server, payloads.envelope(payloads.status(
        second["platform_id"], number, "failed", error_code=131026)))
    settle(channel_server)
    failed = outbox(channel_server, f"wa:+{number}")[-1]
    assert failed["status"] == "Failed" and failed["error_code"] == 131026
    assert failed["error"] == "Message undeliverable"


def test_receipts_that_arrive_before_their_reply_is_recorded_are_kept(
        channel_server: ServerThread, platforms: Platforms) -> None:
    number = payloads.new_number()
    wamid = payloads.wamid()
    platforms.graph.next_ids.append(wamid)
    # Meta's receipts for the bot's reply come first (they race the Graph API's answer).
    for state in ("sent", "delivered"):
        assert post_whatsapp(channel_server, payloads.envelope(
            payloads.status(wamid, number, state))).status == 200
    settle(channel_server)
    assert outbox(channel_server, f"wa:+{number}") == []
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    platforms.graph.wait_for(_to(number))
    settle(channel_server)
    (record,) = outbox(channel_server, f"wa:+{number}")
    assert record["platform_id"] == wamid and record["status"] == "Delivered"
    answer = history(channel_server, f"wa:+{number}")[-1]
    assert answer.message_id == record["_id"] and answer.status == "Delivered"
    # Applied, they are no longer kept.
    service = channels(channel_server)
    assert run(channel_server, service.store.early.find({"platform_id": wamid}).to_list()) == []


def test_platform_errors_are_counted(channel_server: ServerThread) -> None:
    before = metrics.API_ERRORS.labels("whatsapp_cloud", "webhook", "130429")._value.get()
    assert post_whatsapp(channel_server, payloads.envelope(payloads.platform_errors())).status \
        == 200
    settle(channel_server)
    assert metrics.API_ERRORS.labels("whatsapp_cloud", "webhook", "130429")._value.get() \
        == before + 1


def test_429_and_5xx_are_retried_until_sent(channel_server: ServerThread,
                                            platforms: Platforms) -> None:
    number = payloads.new_number()
    platforms.graph.fail_next(429, 503, when=_to(number))
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    settle(channel_server)
    assert len(_replies(platforms, number)) == 3
    (record,) = outbox(channel_server, f"wa:+{number}")
    assert record["status"] == "Sent" and record["platform_id"].startswith("wamid.FAKE")


def test_4xx_is_final_with_a_failed_status(channel_server: ServerThread, platforms: Platforms,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="whatsease")
    number = payloads.new_number()
    platforms.graph.fail_next(400, body={"error": {
        "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
        "fbtrace_id": "AbCdEf"}}, when=_to(number))
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    settle(channel_server)
    (failed,) = outbox(channel_server, f"wa:+{number}")
    assert failed["status"] == "Failed" and failed["error_code"] == 100
    assert "400" in failed["error"] and "Invalid parameter" in failed["error"]
    assert len(_replies(platforms, number)) == 1   # not retried
    # One clear log line: who, final, the platform's reason; no token.
    (line,) = [r.getMessage() for r in caplog.records
               if f"reply to wa:+{number} failed" in r.getMessage()]
    assert "(final)" in line and "Invalid parameter" in line and GRAPH_TOKEN not in line


def _samples(server: ServerThread) -> dict[str, float]:
    """/metrics as served over HTTP: ``name{labels}`` -> value."""
    found: dict[str, float] = {}
    for line in Client(server.port).get("/metrics").body.decode().splitlines():
        if line.startswith("whatsease_channel_"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def test_metrics_count_per_channel_what_operators_watch(channel_server: ServerThread,
                                                        platforms: Platforms) -> None:
    """Per channel, over /metrics: messages in and out, refused signatures, API latency
    and errors, receipts, redeliveries (a full queue's drops: the 503 test)."""
    before = _samples(channel_server)
    number = payloads.new_number()
    platforms.graph.fail_next(429, when=_to(number))
    payload = payloads.envelope(payloads.inbound(number, payloads.text(number, "hello")))
    assert post_whatsapp(channel_server, payload).status == 200
    assert post_whatsapp(channel_server, payload).status == 200    # a redelivery
    assert post_whatsapp(channel_server, payload, secret="wrong").status == 401
    platforms.graph.wait_for(_to(number), count=2)
    settle(channel_server)
    (record,) = outbox(channel_server, f"wa:+{number}")
    post_whatsapp(channel_server, payloads.envelope(payloads.status(
        record["platform_id"], number, "delivered")))
    settle(channel_server)
    after = _samples(channel_server)

    def grew(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    wa = 'channel="whatsapp_cloud"'
    assert grew(f'whatsease_channel_messages_in_total{{{wa},kind="text"}}') == 1
    assert grew(f'whatsease_channel_messages_out_total{{{wa},outcome="sent"}}') == 1
    assert grew(f"whatsease_channel_webhook_refused_total{{{wa}}}") == 1
    assert grew(f"whatsease_channel_webhook_duplicates_total{{{wa}}}") == 1
    assert grew(f'whatsease_channel_statuses_total{{{wa},status="delivered"}}') == 1
    assert grew(f'whatsease_channel_api_errors_total{{{wa},operation="send",status="429"}}') == 1
    assert grew(f'whatsease_channel_api_seconds_count{{{wa},operation="send"}}') == 2
    assert grew(f'whatsease_channel_api_seconds_count{{{wa},operation="mark_read"}}') == 1


def test_outside_the_24_hour_window_nothing_is_sent(channel_server: ServerThread,
                                                    platforms: Platforms) -> None:
    number = payloads.new_number()
    old = int(time.time()) - 25 * 3600
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello", at=old))))
    settle(channel_server)
    stored = history(channel_server, f"wa:+{number}")
    assert [m.sender for m in stored] == [f"wa:+{number}", "bot:whatsease"]
    assert _replies(platforms, number) == []
    (record,) = outbox(channel_server, f"wa:+{number}")
    assert record["status"] == "Failed" and "24 h" in record["error"]
    # Inside the window (a message just now), replies go out again.
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello again"))))
    platforms.graph.wait_for(_to(number))


def test_wa_link_and_qr_code(channel_server: ServerThread) -> None:
    user = register(channel_server.port, "linker")
    res = user.client.post("/api/v1/channels/whatsapp/link", {"text": "Hi, I need help"})
    assert res.status == 200, res.body
    assert res.json["link"] == "https://wa.me/15550783881?text=Hi%2C%20I%20need%20help"
    assert res.json["number"] == "+15550783881" and res.json["binding"] == "bot:whatsease"
    assert res.json["qr_svg"].startswith("<svg") and "<path" in res.json["qr_svg"]
    assert Client(channel_server.port).post("/api/v1/channels/whatsapp/link", {}).status == 401
    assert user.client.post("/api/v1/channels/whatsapp/link", {"txt": "x"}).status == 422


def test_a_user_cannot_message_a_whatsapp_contact_through_the_messenger(
        channel_server: ServerThread, platforms: Platforms) -> None:
    number = payloads.new_number()
    post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    platforms.graph.wait_for(_to(number))
    settle(channel_server)
    user = register(channel_server.port, "spammer")
    user.client.post("/api/v1/messages", {"recipient": f"wa:+{number}", "content": "buy now"})
    settle(channel_server)
    assert all("buy now" not in str(r.body) for r in _replies(platforms, number))


def test_the_webhook_is_answered_before_anything_is_processed(channel_server: ServerThread,
                                                              platforms: Platforms) -> None:
    service = channels(channel_server)
    number = payloads.new_number()

    async def hold_every_worker() -> None:
        for _ in range(core.MAX_CONCURRENT_EVENTS):
            await service._working.acquire()

    async def release_every_worker() -> None:
        for _ in range(core.MAX_CONCURRENT_EVENTS):
            service._working.release()

    run(channel_server, hold_every_worker())
    try:
        res = post_whatsapp(channel_server, payloads.envelope(payloads.inbound(
            number, payloads.text(number, "are you there?"))))
        # 200 while no event can be processed: Meta never waits for the bot.
        assert res.status == 200 and res.json == {"accepted": 1}
        assert service.pending >= 1 and history(channel_server, f"wa:+{number}") == []
    finally:
        run(channel_server, release_every_worker())
    platforms.graph.wait_for(_to(number))


def test_a_full_queue_answers_503_so_that_meta_delivers_again(channel_server: ServerThread,
                                                              platforms: Platforms) -> None:
    number = payloads.new_number()
    payload = payloads.envelope(payloads.inbound(
        number, *(payloads.text(number, f"message {i}") for i in range(3))))
    service = channels(channel_server)
    dropped = 'whatsease_channel_webhook_dropped_total{channel="whatsapp_cloud"}'
    before = _samples(channel_server).get(dropped, 0.0)
    limit, service.max_pending = service.max_pending, 2
    try:
        res = post_whatsapp(channel_server, payload)
    finally:
        service.max_pending = limit
    assert res.status == 503 and res.header("retry-after") == "5"
    assert _samples(channel_server)[dropped] == before + 3
    settle(channel_server)
    assert history(channel_server, f"wa:+{number}") == []
    # Meta's retry of the same delivery is taken in whole.
    assert post_whatsapp(channel_server, payload).json == {"accepted": 3}
    platforms.graph.wait_for(_to(number), count=3)
    settle(channel_server)
    assert len([m for m in history(channel_server, f"wa:+{number}")
                if m.sender == f"wa:+{number}"]) == 3


def test_body_larger_than_a_webhook_may_be_is_413(channel_server: ServerThread) -> None:
    body = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * (600 * 1024) + b'"}'
    res = Client(channel_server.port).request(
        "POST", "/channels/whatsapp/webhook", body=body,
        headers={"X-Hub-Signature-256": payloads.sign(APP_SECRET, body)})
    assert res.status == 413


def test_early_receipts_are_bounded_and_expire(channel_server: ServerThread,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    service = channels(channel_server)
    channel = service.channel("whatsapp")
    early = service.store.early
    monkeypatch.setattr(receipts, "MAX_EARLY_RECEIPTS", 3)

    def receipt(platform_id: str) -> StatusUpdate:
        return StatusUpdate("whatsapp_cloud", platform_id, "wa:+15550002", "delivered",
                            datetime.now(UTC))

    async def scenario() -> list[str]:
        await early.delete_many({})
        stale = service.clock() - timedelta(seconds=EARLY_RECEIPT_SECS + 1)
        await early.insert_one({"_id": "whatsapp_cloud:wamid.STALE:delivered",
                                "channel": "whatsapp_cloud", "platform_id": "wamid.STALE",
                                "status": "delivered", "at": stale})
        for n in range(5):
            await service._status(channel, receipt(f"wamid.EARLY{n}"))
        # A stale one is never applied, even before the TTL monitor removes it.
        assert await service.store.take_early([("whatsapp_cloud", "wamid.STALE")],
                                              service.clock()) == []
        kept = sorted(d["platform_id"] for d in await early.find().to_list())
        await early.delete_many({})
        return kept

    # The stale one made room; beyond the bound, new ones are not kept.
    assert run(channel_server, scenario()) == ["wamid.EARLY0", "wamid.EARLY1", "wamid.EARLY2"]
    ttl = [i for i in run(channel_server, early.index_information()).values()
           if i.get("key") == [("at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == EARLY_RECEIPT_SECS


async def test_reply_buttons_and_lists_go_out_as_interactive_messages(
        platforms: Platforms) -> None:
    provider = build_provider("whatsapp_cloud", {
        "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "token": GRAPH_TOKEN,
        "phone_number_id": payloads.PHONE_NUMBER_ID, "graph_url": platforms.graph.graph_url},
        ProviderContext(OutboundPolicy(allow_private=True)))
    number = payloads.new_number()
    buttons = await provider.send(OutboundMessage(
        to=f"wa:+{number}", text="Which size?", reply_to="wamid.EARLIER",
        buttons=(Button("s", "Small"), Button("m", "Medium"))))
    listed = await provider.send(OutboundMessage(
        to=f"wa:+{number}", text="Pick a colour", list_button="Colours",
        sections=(ListSection("In stock", (ListRow("blue", "Blue", "Ships today"),
                                           ListRow("red", "Red"))),)))
    assert buttons.ok and listed.ok
    first, second = platforms.graph.matching(_to(number))
    assert first.headers["authorization"] == f"Bearer {GRAPH_TOKEN}"
    assert first.body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": number,
        "context": {"message_id": "wamid.EARLIER"}, "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Which size?"}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": "s", "title": "Small"}},
                        {"type": "reply", "reply": {"id": "m", "title": "Medium"}}]}}}
    assert second.body["type"] == "interactive" and second.body["interactive"] == {
        "type": "list", "body": {"text": "Pick a colour"}, "action": {
            "button": "Colours", "sections": [{"title": "In stock", "rows": [
                {"id": "blue", "title": "Blue", "description": "Ships today"},
                {"id": "red", "title": "Red"}]}]}}
