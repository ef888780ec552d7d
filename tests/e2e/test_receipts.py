"""Receipts for what arrived while the recipient was away: reported Delivered on their return."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, chat_row, login_ui, open_chat, tick_state
from tests.support import ServerThread, register, wait_for

pytestmark = pytest.mark.e2e

OFFLINE = ("Are you there?", "I sent this while you were away", "Call me when you're back")


def test_messages_sent_while_offline_turn_delivered_when_the_inbox_loads(
        server: ServerThread, new_page: Callable[..., Page]) -> None:
    sam = register(server.port, "sam", "Sam Sender")
    bob = register(server.port, "bob", "Bob Away")
    # Bob is offline (no socket anywhere); Sam writes three times.
    for text in OFFLINE:
        res = sam.client.post("/api/v1/messages", {"recipient": bob.email, "content": text})
        assert res.status == 201, res.body

    sam_page = new_page()
    login_ui(sam_page, server.url, sam)
    open_chat(sam_page, "Bob Away")
    for text in OFFLINE:
        expect(tick_state(sam_page, text)).to_have_attribute("aria-label", "Sent")

    # Bob logs in and stays on the inbox: he has received them, so Sam sees ✓✓.
    bob_page = new_page()
    login_ui(bob_page, server.url, bob)
    expect(chat_row(bob_page, "Sam Sender").locator(".badge")).to_have_text(
        "3 unread messages", timeout=LIVE_MS)
    for text in OFFLINE:
        expect(tick_state(sam_page, text)).to_have_attribute("aria-label", "Delivered",
                                                             timeout=LIVE_MS)

    def statuses() -> list[str] | None:
        body = sam.client.get(f"/api/v1/messages?with={bob.email}").json
        found = [m["status"] for m in body["messages"]]
        return found if set(found) == {"Delivered"} else None

    assert wait_for(statuses, what="REST to say Delivered") == ["Delivered"] * 3
    # Still on the inbox: delivered, not read.
    expect(bob_page).to_have_url(f"{server.url}/")
