"""Chatting with the built-in assistant at /bot."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, bubbles, login_ui, send
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e

BOT = "bot:whatsease"


def test_chat_with_the_assistant(server: ServerThread, new_page: Callable[..., Page]) -> None:
    if BOT not in server.services.messaging.bots:
        pytest.skip(f"{BOT} is not registered on this server yet (the assistant issue wires it)")
    user = register(server.port, "botfan", "Bot Fan")
    page = new_page()
    login_ui(page, server.url, user)
    page.get_by_role("link", name="Chat with the assistant").click()
    expect(page).to_have_url(f"{server.url}/bot")
    expect(page.locator(".chat-title")).to_have_text("WhatsEase Assistant")

    # An empty bot chat offers suggestions; one click asks the question.
    suggestions = page.get_by_role("group", name="Suggested questions")
    suggestions.get_by_role("button", name="What do the ticks mean?").click()
    expect(bubbles(page, "What do the ticks mean?")).to_have_count(1)
    replies = page.locator(".msg.theirs")
    expect(replies).to_have_count(1, timeout=LIVE_MS)
    expect(replies.first.locator(".msg-text")).not_to_be_empty()

    send(page, "tell me a joke")
    expect(replies).to_have_count(2, timeout=LIVE_MS)
    # The assistant read both questions.
    expect(page.locator(".msg.mine .ticks [role=img]").last).to_have_attribute(
        "aria-label", "Read", timeout=LIVE_MS)

    # The bot chat is listed under the Bots filter, and the history survives a reload.
    page.get_by_role("button", name="Bots").click()
    expect(page.locator("#chat-list .chat-row")).to_have_count(1)
    expect(page.locator("#chat-list .chat-row")).to_contain_text("WhatsEase Assistant")
    page.reload()
    expect(page.locator(".msg.theirs")).to_have_count(2)
    expect(bubbles(page, "tell me a joke")).to_have_count(1)
