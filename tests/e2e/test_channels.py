"""A WhatsApp customer handed from the org's bot to an agent in the console, in Chromium."""

from __future__ import annotations

import asyncio
import secrets
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.channels import payloads
from tests.channels.conftest import Platforms, channel_config, channels, post_whatsapp
from tests.customer_support.browser import LIVE_MS, console_login, panel
from tests.customer_support.http import platform_admin
from tests.e2e.ui import axe_violations
from tests.fakes.platforms import FakeGraphAPI, FakeLoopbackPeer, FakeTelegramAPI, Recorded
from tests.support import ServerThread, register
from tests.support import test_config as config_for_tests

pytestmark = pytest.mark.e2e

ORG_ID = "wa-shop-" + secrets.token_hex(3)


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    found = Platforms(FakeGraphAPI().start(), FakeTelegramAPI().start(),
                      FakeLoopbackPeer().start())
    yield found
    for fake in found.all():
        fake.stop()


@pytest.fixture
def wa_server(mongo_uri: str, platforms: Platforms) -> Iterator[ServerThread]:
    thread = ServerThread(config_for_tests(**channel_config(
        platforms, whatsapp_binding=f"org:{ORG_ID}")), mongo_uri).start()
    channels(thread).retry_backoff = 0.01
    yield thread
    thread.stop()


def test_a_whatsapp_customer_is_handed_from_the_bot_to_an_agent(
        wa_server: ServerThread, platforms: Platforms, new_page: Callable[..., Page]) -> None:
    root = platform_admin(wa_server)
    admin = register(wa_server.port, "boss", name="Boss")
    created = root.client.post("/api/v1/orgs", {"name": "WA Shop", "id": ORG_ID,
                                                "admin": admin.email,
                                                "settings": {"routing": "bot"}})
    assert created.status == 201, created.body
    agent = register(wa_server.port, "agent", name="Alex Agent")
    assert admin.client.post(f"/api/v1/orgs/{ORG_ID}/agents",
                             {"email": agent.email}).status == 201
    page = new_page(bypass_csp=True)
    console_login(page, wa_server.url, agent)

    number = payloads.new_number()

    def to_customer(r: Recorded) -> bool:
        return isinstance(r.body, dict) and r.body.get("to") == number \
            and r.body.get("type") == "text"

    post_whatsapp(wa_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "Where is my parcel?"), name="Wanda Wu")))
    bot_row = page.locator("#list-bot .conv", has_text="Wanda Wu")
    expect(bot_row).to_have_count(1, timeout=LIVE_MS)
    expect(bot_row.locator(".channel")).to_have_text("via WhatsApp")
    platforms.graph.wait_for(to_customer)     # the bot answered on WhatsApp

    post_whatsapp(wa_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "talk to a person"), name="Wanda Wu")))
    wanda = panel(page, "Wanda Wu")
    expect(page.locator("#list-mine .conv", has_text="Wanda Wu")).to_have_count(1,
                                                                                 timeout=LIVE_MS)
    page.locator("#list-mine .conv", has_text="Wanda Wu").click()
    expect(wanda).to_be_visible(timeout=LIVE_MS)
    expect(wanda.locator(".channel")).to_have_text("via WhatsApp")
    expect(wanda.get_by_text(f"wa:+{number}")).to_be_visible()
    expect(wanda.get_by_text("Where is my parcel?")).to_be_visible()
    reply = wanda.get_by_label("Reply to Wanda Wu")
    expect(reply).to_be_enabled(timeout=LIVE_MS)
    platform_id = "wamid.E2E" + secrets.token_hex(8).upper()
    platforms.graph.next_ids.append(platform_id)
    reply.fill("Alex here: it ships today.")
    reply.press("Enter")
    sent = platforms.graph.wait_for(
        lambda r: to_customer(r) and r.body["text"]["body"] == "Alex here: it ships today.")
    assert sent[0].headers["authorization"].startswith("Bearer EAAG")
    bubble = wanda.locator(".msg", has_text="Alex here: it ships today.")
    expect(bubble.locator(".delivery")).to_have_text("✓Sent", timeout=LIVE_MS)
    post_whatsapp(wa_server, payloads.envelope(payloads.status(platform_id, number, "read")))
    expect(bubble.locator(".delivery-read")).to_have_text("✓✓Read", timeout=LIVE_MS)
    problems: Any = axe_violations(page)
    assert not problems, problems


def _png() -> bytes:
    """A real 1x1 PNG, so the browser can decode what the console shows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def test_the_console_shows_attachments_failed_replies_and_past_conversations(
        wa_server: ServerThread, platforms: Platforms, new_page: Callable[..., Page]) -> None:
    root = platform_admin(wa_server)
    admin = register(wa_server.port, "boss", name="Boss")
    created = root.client.post("/api/v1/orgs", {"name": "WA Shop", "id": ORG_ID,
                                                "admin": admin.email,
                                                "settings": {"routing": "bot"}})
    assert created.status == 201, created.body
    number = payloads.new_number()
    contact = f"wa:+{number}"
    # An earlier conversation, closed: the panel lists it under past conversations.
    post_whatsapp(wa_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hi there"), name="Wanda Wu")))
    earlier = _wait_conversation(wa_server, contact)
    assert admin.client.post(f"/api/v1/support/conversations/{earlier}/close").status == 200

    page = new_page()    # the console's own CSP applies: images come as data: URLs
    console_login(page, wa_server.url, admin)
    image_id, doc_id = (str(secrets.randbelow(10**15) + 10**15) for _ in range(2))
    platforms.graph.add_media(image_id, _png(), "image/png")
    platforms.graph.add_media(doc_id, b"%PDF-1.4 invoice", "application/pdf")
    image = payloads.image(number, "The broken part")
    image["image"].update(id=image_id, mime_type="image/png")
    document = payloads.document(number)
    document["document"]["id"] = doc_id
    post_whatsapp(wa_server, payloads.envelope(payloads.inbound(number, image, document,
                                                                name="Wanda Wu")))
    row = page.locator("#list-bot .conv", has_text="Wanda Wu")
    expect(row).to_have_count(1, timeout=LIVE_MS)
    row.click()
    wanda = panel(page, "Wanda Wu")
    picture = wanda.get_by_role("img", name="Image from the customer: The broken part")
    expect(picture).to_be_visible(timeout=LIVE_MS)
    assert picture.evaluate("img => img.naturalWidth") == 1
    expect(wanda.get_by_role("button", name="Download invoice-0042.pdf")).to_be_visible()
    wanda.locator(".past summary").click()
    expect(wanda.locator(".past li button")).to_have_count(1, timeout=LIVE_MS)

    wanda.get_by_role("button", name="Take over").click()
    reply = wanda.get_by_label("Reply to Wanda Wu")
    expect(reply).to_be_enabled(timeout=LIVE_MS)
    platforms.graph.fail_next(400, body={"error": {"code": 131026,
                                                   "message": "Message undeliverable"}},
                              when=lambda r: isinstance(r.body, dict)
                              and r.body.get("to") == number and r.body.get("type") == "text"
                              and r.body["text"]["body"] == "Here is your refund.")
    reply.fill("Here is your refund.")
    reply.press("Enter")
    failed = wanda.locator(".msg-agent", has_text="Here is your refund.").locator(
        ".delivery-failed")
    expect(failed).to_have_text("Not delivered: HTTP 400: Message undeliverable (code 131026)",
                                timeout=LIVE_MS)


def _wait_conversation(server: ServerThread, contact: str) -> str:
    """The contact's support conversation, once its first message has been taken in."""
    async def find() -> str:
        service = channels(server)
        for _ in range(200):
            await service.wait_idle()
            doc = await service.store.contact(contact)
            if doc and doc.get("conversation_id"):
                return str(doc["conversation_id"])
            await asyncio.sleep(0.05)
        raise AssertionError(f"no conversation for {contact}")
    return server.call(find())
