"""axe-core finds no serious or critical problems on the main pages, in light and dark mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, axe_violations, bubbles, login_ui, send
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e

BOT = "bot:whatsease"


def describe(violations: dict[str, list[Any]]) -> str:
    return json.dumps(violations, indent=2)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_violations(server: ServerThread, new_page: Callable[..., Page],
                               scheme: Literal["light", "dark"]) -> None:
    me = register(server.port, "axe", "Ada Axe")
    friend = register(server.port, "axefriend", "Finn Friend")
    friend.client.post("/api/v1/messages", {"recipient": me.email, "content": "Unread hello"})
    # axe is injected as a script tag, which the strict CSP would refuse.
    page = new_page(bypass_csp=True, color_scheme=scheme)
    problems: dict[str, list[Any]] = {}

    page.goto(f"{server.url}/login")
    expect(page.get_by_label("Email")).to_be_visible()
    page.get_by_role("button", name="Log in").click()   # show the field errors too
    expect(page.locator("#auth-email-error")).not_to_be_empty()
    problems["login"] = axe_violations(page)

    login_ui(page, server.url, me)
    expect(page.locator("#chat-list .badge")).to_have_count(1)
    problems["inbox"] = axe_violations(page)

    page.locator("#chat-list .chat-row").first.click()
    send(page, "A reply with ticks")
    expect(page.locator(".unread-sep")).to_be_visible()
    problems["chat"] = axe_violations(page)

    page.goto(f"{server.url}/bot")
    expect(page.locator(".chat-title")).to_have_text("WhatsEase Assistant")
    if BOT in server.services.messaging.bots:
        send(page, "hello")
        expect(page.locator(".msg.theirs")).to_have_count(1, timeout=LIVE_MS)
    else:
        expect(page.locator(".older")).to_contain_text("isn't available")
    problems["bot"] = axe_violations(page)

    page.goto(f"{server.url}/activity")
    expect(page.locator(".activity-item").first).to_be_visible()
    problems["activity"] = axe_violations(page)

    page.goto(f"{server.url}/settings")
    expect(page.locator(".session").first).to_be_visible()
    problems["settings"] = axe_violations(page)

    assert not any(problems.values()), describe({k: v for k, v in problems.items() if v})
    assert bubbles(page).count() == 0   # settings has no messages: the pages really changed
