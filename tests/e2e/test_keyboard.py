"""Keyboard only: from the login page to a sent message without touching the mouse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, bubbles, tick_state, wait_online
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e


def test_keyboard_only_login_to_sent_message(server: ServerThread,
                                             new_page: Callable[..., Page]) -> None:
    me = register(server.port, "keys", "Kim Keys")
    friend = register(server.port, "friend", "Frankie Friend")
    friend.client.post("/api/v1/messages", {"recipient": me.email, "content": "Ping me back"})
    page = new_page()
    kb = page.keyboard

    # A deep link while logged out: the login page, which returns there afterwards.
    page.goto(f"{server.url}/activity")
    expect(page).to_have_url(f"{server.url}/login?next=%2Factivity")
    expect(page.get_by_label("Email")).to_be_focused()
    kb.type(me.email)
    kb.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    kb.type(me.password)
    kb.press("Enter")
    expect(page).to_have_url(f"{server.url}/activity")
    wait_online(page)

    # "/" jumps to search; arrows walk the results; Enter opens the chat.
    kb.press("/")
    expect(page.get_by_role("searchbox")).to_be_focused()
    kb.type("Frankie")
    row = page.locator("#chat-list .chat-row", has_text="Frankie Friend")
    expect(row).to_have_count(1)
    kb.press("ArrowDown")
    expect(row).to_be_focused()
    kb.press("ArrowUp")
    expect(page.get_by_role("searchbox")).to_be_focused()
    kb.press("ArrowDown")
    kb.press("Enter")
    expect(page.locator(".chat-title")).to_have_text("Frankie Friend")
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_focused()

    # Enter sends; Shift+Enter adds a line; an empty message is refused with a reason.
    kb.press("Enter")
    expect(page.locator(".composer-reason")).to_contain_text("empty messages are not sent")
    kb.type("On my way")
    kb.press("Shift+Enter")
    kb.type("see you soon")
    kb.press("Enter")
    expect(bubbles(page, "On my way").locator(".msg-text")).to_have_text("On my way\nsee you soon")
    expect(tick_state(page, "On my way")).to_have_attribute("aria-label", "Sent", timeout=LIVE_MS)
    expect(composer).to_have_value("")
    expect(composer).to_be_focused()

    # Ctrl+K also finds search; Escape there clears it; Tab leaves the search (no trap).
    kb.press("Control+k")
    expect(page.get_by_role("searchbox")).to_be_focused()
    kb.press("Escape")
    expect(page.get_by_role("searchbox")).to_have_value("")
    # Tab walks on: the filters, the chat list as a single stop, then the message log.
    kb.press("Tab")
    expect(page.get_by_role("button", name="All")).to_be_focused()
    kb.press("Tab")
    kb.press("Tab")
    expect(page.get_by_role("button", name="Bots")).to_be_focused()
    kb.press("Tab")
    expect(row).to_be_focused()
    kb.press("Tab")
    expect(page.get_by_role("log")).to_be_focused()
    # Shift+Tab goes back the same way: no trap in either direction.
    kb.press("Shift+Tab")
    expect(row).to_be_focused()
