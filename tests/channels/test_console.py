"""What agents see of a channel conversation beyond its messages: attachments fetched from
the platform (WhatsApp's Graph API, Telegram's getFile) and replies that failed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.channels import payloads
from tests.channels.conftest import (
    TG_TOKEN,
    Platforms,
    channel_config,
    channels,
    post_telegram,
    post_whatsapp,
    run,
    settle,
)
from tests.customer_support.http import console_socket, platform_admin
from tests.fakes.platforms import FakeGraphAPI, Raw, Recorded
from tests.support import Client, ServerThread, User, register
from tests.support import test_config as config_for_tests

ORG_ID = "media-" + secrets.token_hex(3)
JPEG = b"\xff\xd8\xff\xe0" + secrets.token_bytes(2000)
MAX_MEDIA_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def org_server(mongo_uri: str, platforms: Platforms) -> Iterator[ServerThread]:
    thread = ServerThread(config_for_tests(**channel_config(
        platforms, whatsapp_binding=f"org:{ORG_ID}", telegram_binding=f"org:{ORG_ID}",
        channel_media_max_bytes=MAX_MEDIA_BYTES)), mongo_uri).start()
    channels(thread).retry_backoff = 0.01
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def team(org_server: ServerThread) -> dict[str, User]:
    root = platform_admin(org_server)
    admin = register(org_server.port, "boss", name="Boss")
    res = root.client.post("/api/v1/orgs", {"name": "Media Shop", "id": ORG_ID,
                                            "admin": admin.email,
                                            "settings": {"routing": "bot"}})
    assert res.status == 201, res.body
    return {"admin": admin, "outsider": register(org_server.port, "outsider")}


def _image(number: str, media_id: str, caption: str = "The broken part") -> dict[str, Any]:
    message = payloads.image(number, caption)
    message["image"]["id"] = media_id
    return message


def _conversation_id(server: ServerThread, contact: str) -> str:
    doc = run(server, channels(server).store.contact(contact))
    assert doc is not None and doc.get("conversation_id")
    return str(doc["conversation_id"])


def _customer_image(server: ServerThread, team: dict[str, User], media_id: str,
                    **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """A new WhatsApp customer sends an image; (conversation id, its media entry)."""
    number = payloads.new_number()
    post_whatsapp(server, payloads.envelope(payloads.inbound(
        number, _image(number, media_id, **kwargs))))
    settle(server)
    conversation_id = _conversation_id(server, f"wa:+{number}")
    res = team["admin"].client.get(f"/api/v1/channels/conversations/{conversation_id}")
    assert res.status == 200, res.body
    (media,) = res.json["media"]
    return conversation_id, media


def _media_calls(graph: FakeGraphAPI, media_id: str) -> list[Recorded]:
    return graph.matching(lambda r: r.method == "GET" and r.path.endswith("/" + media_id))


def test_an_agent_sees_a_whatsapp_image_fetched_once_through_the_graph_api(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    media_id = str(secrets.randbelow(10**15) + 10**15)
    platforms.graph.add_media(media_id, JPEG)
    admin = team["admin"]
    console = console_socket(org_server, admin)
    number = payloads.new_number()
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, _image(number, media_id))))
    message = console.expect("message", lambda f: f["message"]["sender"] == f"wa:+{number}")
    message_id = message["message"]["message_id"]
    # The console hears of the attachment live, for the message it came with.
    frame = console.expect("channel", lambda f: f["media"]
                           and f["media"][0]["message_id"] == message_id)
    assert frame["media"][0]["type"] == "image" and frame["media"][0]["caption"] == \
        "The broken part"
    assert "media_id" not in frame["media"][0]
    console.close()

    res = admin.client.get(f"/api/v1/channels/media/{message_id}")
    assert res.status == 200, res.body
    assert res.body == JPEG
    assert res.header("content-type") == "image/jpeg"
    assert res.header("x-content-type-options") == "nosniff"
    assert "sandbox" in (res.header("content-security-policy") or "")
    assert (res.header("content-disposition") or "").startswith("inline")
    meta, = [r for r in _media_calls(platforms.graph, media_id) if r.path.startswith("/v")]
    assert meta.headers["authorization"].startswith("Bearer EAAG")
    download, = platforms.graph.matching(lambda r: r.path == f"/media/{media_id}")
    assert download.headers["authorization"] == meta.headers["authorization"]
    # A second look is served from the copy: the platform is not asked again.
    again = admin.client.get(f"/api/v1/channels/media/{message_id}")
    assert again.status == 200 and again.body == JPEG
    assert len(_media_calls(platforms.graph, media_id)) == 2


def test_attachments_are_404_for_anyone_outside_the_org(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    media_id = str(secrets.randbelow(10**15) + 10**15)
    platforms.graph.add_media(media_id, JPEG)
    conversation_id, media = _customer_image(org_server, team, media_id)
    outsider = team["outsider"]
    assert outsider.client.get(f"/api/v1/channels/media/{media['message_id']}").status == 404
    assert outsider.client.get(
        f"/api/v1/channels/conversations/{conversation_id}").status == 404
    assert outsider.client.get("/api/v1/channels/media/not-an-id").status == 404
    anonymous = Client(org_server.port).get(f"/api/v1/channels/media/{media['message_id']}")
    assert anonymous.status == 401
    assert _media_calls(platforms.graph, media_id) == []   # nothing fetched for them


@pytest.mark.parametrize("case", ["private_url", "html", "not_an_image", "too_large",
                                  "graph_404"])
def test_media_that_cannot_be_had_shows_as_unavailable(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User],
        case: str) -> None:
    graph = platforms.graph
    media_id = str(secrets.randbelow(10**15) + 10**15)
    other = FakeGraphAPI().start()
    try:
        if case == "private_url":
            # Meta's answer names a URL that is neither the Graph host nor a public address.
            path = other.add_media(media_id, JPEG)
            graph.media_info[media_id] = {"url": f"{other.base_url}{path}"}
        elif case == "html":
            graph.add_media(media_id, b"<script>alert(1)</script>", "text/html")
        elif case == "not_an_image":
            graph.add_media(media_id, b"<svg onload=alert(1)>", "image/jpeg")
        elif case == "too_large":
            graph.add_media(media_id, JPEG, file_size=MAX_MEDIA_BYTES + 1)
        else:
            graph.fail_next(404, when=lambda r: r.method == "GET" and media_id in r.path)
        _, media = _customer_image(org_server, team, media_id)
        res = team["admin"].client.get(f"/api/v1/channels/media/{media['message_id']}")
        assert res.status == 502, res.body
        assert res.json["type"].endswith("media_unavailable")
        assert res.json["detail"].startswith("Media unavailable:")
        assert other.requests == []          # the private address was never called
        assert "EAAG" not in res.body.decode()
    finally:
        other.stop()


def test_a_telegram_photo_is_fetched_through_getfile(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    chat = payloads.new_chat_id()
    update = payloads.tg_photo(chat)
    file_id = update["message"]["photo"][-1]["file_id"]
    platforms.telegram.files[f"/file/bot{TG_TOKEN}/photos/{file_id}.jpg"] = Raw(JPEG)
    post_telegram(org_server, update)
    settle(org_server)
    conversation_id = _conversation_id(org_server, f"tg:{chat}")
    info = team["admin"].client.get(f"/api/v1/channels/conversations/{conversation_id}")
    (media,) = info.json["media"]
    res = team["admin"].client.get(f"/api/v1/channels/media/{media['message_id']}")
    assert res.status == 200, res.body
    # Telegram serves files untyped: the photo's type and its magic bytes decide.
    assert res.body == JPEG and res.header("content-type") == "image/jpeg"
    (call,) = platforms.telegram.calls("getFile")
    assert call.body == {"file_id": file_id}


def _to(number: str) -> Any:
    def match(r: Recorded) -> bool:
        return (isinstance(r.body, dict) and r.body.get("to") == number
                and r.body.get("type") == "text")
    return match


def _taken_over(server: ServerThread, agent: User) -> tuple[str, str]:
    """A new WhatsApp customer says hello and ``agent`` takes the conversation over;
    (the customer's number, the conversation's id)."""
    number = payloads.new_number()
    post_whatsapp(server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    settle(server)
    conversation_id = _conversation_id(server, f"wa:+{number}")
    taken = agent.client.post(f"/api/v1/support/conversations/{conversation_id}/takeover")
    assert taken.status == 200, taken.body
    settle(server)
    return number, conversation_id


def test_a_reply_whatsapp_refuses_or_cannot_deliver_shows_as_failed(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    admin = team["admin"]
    number, conversation_id = _taken_over(org_server, admin)
    console = console_socket(org_server, admin)

    # 1. The Graph API refuses the reply (a final 4xx).
    platforms.graph.fail_next(400, body={"error": {"code": 131026,
                                                   "message": "Message undeliverable"}},
                              when=_to(number))
    first = admin.client.post(f"/api/v1/support/conversations/{conversation_id}/messages",
                              {"content": "Your parcel ships today.", "client_id": "f1"})
    assert first.status == 201, first.body
    refused = console.expect("channel", lambda f: f["deliveries"] and f["deliveries"][0][
        "message_id"] == first.json["message"]["message_id"])
    assert refused["conversation_id"] == conversation_id
    assert refused["deliveries"][0]["status"] == "Failed"
    assert refused["deliveries"][0]["error_code"] == 131026
    assert "Message undeliverable" in refused["deliveries"][0]["error"]

    # 2. Accepted, then reported failed by a status webhook with the platform's error.
    second = admin.client.post(f"/api/v1/support/conversations/{conversation_id}/messages",
                               {"content": "Anything else?", "client_id": "f2"})
    assert second.status == 201, second.body
    sent = platforms.graph.wait_for(
        lambda r: _to(number)(r) and r.body["text"]["body"] == "Anything else?")
    assert sent
    settle(org_server)
    record = next(r for r in run(org_server, channels(org_server).store.outbox_for(
        f"wa:+{number}")) if r["_id"] == second.json["message"]["message_id"])
    post_whatsapp(org_server, payloads.envelope(payloads.status(
        record["platform_id"], number, "failed", error_code=131049)))
    failed = console.expect("channel", lambda f: f["deliveries"] and f["deliveries"][0][
        "message_id"] == record["_id"] and f["deliveries"][0]["status"] == "Failed")
    assert failed["deliveries"][0]["error_code"] == 131049
    console.close()

    info = admin.client.get(f"/api/v1/channels/conversations/{conversation_id}")
    assert info.status == 200, info.body
    assert {d["message_id"]: d["error_code"] for d in info.json["deliveries"]
            if d["status"] == "Failed"} == {
        first.json["message"]["message_id"]: 131026, record["_id"]: 131049}


def test_an_agent_sees_a_reply_sent_delivered_and_read_as_whatsapp_reports(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    admin = team["admin"]
    number, conversation_id = _taken_over(org_server, admin)
    console = console_socket(org_server, admin)
    platform_id = "wamid.TICKS" + secrets.token_hex(8).upper()
    platforms.graph.next_ids.append(platform_id)
    posted = admin.client.post(f"/api/v1/support/conversations/{conversation_id}/messages",
                               {"content": "It ships today.", "client_id": "t1"})
    assert posted.status == 201, posted.body
    message_id = posted.json["message"]["message_id"]

    def state(status: str) -> dict[str, Any]:
        frame = console.expect("channel", lambda f: any(
            d["message_id"] == message_id and d["status"] == status for d in f["deliveries"]))
        assert frame["conversation_id"] == conversation_id
        return frame

    state("Sent")                               # the Graph API took it
    post_whatsapp(org_server, payloads.envelope(payloads.status(platform_id, number,
                                                                "delivered")))
    state("Delivered")
    post_whatsapp(org_server, payloads.envelope(payloads.status(platform_id, number, "read")))
    state("Read")
    # A late "delivered" (Meta does not promise order) does not move it back.
    post_whatsapp(org_server, payloads.envelope(payloads.status(platform_id, number,
                                                                "delivered")))
    settle(org_server)
    console.close()
    info = admin.client.get(f"/api/v1/channels/conversations/{conversation_id}")
    assert info.status == 200, info.body
    states = {d["message_id"]: d["status"] for d in info.json["deliveries"]}
    assert states[message_id] == "Read"
    # The org's bot answered "hello" on WhatsApp before the takeover: its reply is listed too.
    assert len(states) >= 2 and set(states.values()) <= {"Sent", "Delivered", "Read"}
    # Nobody outside the org learns anything of it.
    outsider = team["outsider"].client.get(f"/api/v1/channels/conversations/{conversation_id}")
    assert outsider.status == 404
