"""A WhatsApp customer handed from the org's bot to an agent in the console, in Chromium."""

from __future__ import annotations

import secrets
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
    reply.fill("Alex here: it ships today.")
    reply.press("Enter")
    sent = platforms.graph.wait_for(
        lambda r: to_customer(r) and r.body["text"]["body"] == "Alex here: it ships today.")
    assert sent[0].headers["authorization"].startswith("Bearer EAAG")
    problems: Any = axe_violations(page)
    assert not problems, problems
