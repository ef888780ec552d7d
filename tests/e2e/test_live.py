"""Changes reach the people they concern without a reload: a rename in peers' chat lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, chat_row, login_ui, open_chat
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e


def test_a_rename_reaches_open_chat_lists_and_headers_live(
        server: ServerThread, new_page: Callable[..., Page]) -> None:
    ann = register(server.port, "ann", "Ann Before")
    bob = register(server.port, "bob", "Bob Peer")
    cat = register(server.port, "cat", "Cat Peer")
    for peer in (bob, cat):
        res = ann.client.post("/api/v1/messages", {"recipient": peer.email, "content": "hello"})
        assert res.status == 201, res.body

    bob_page, cat_page, ann_page = new_page(), new_page(), new_page()
    login_ui(bob_page, server.url, bob)
    login_ui(cat_page, server.url, cat)
    open_chat(cat_page, "Ann Before")
    login_ui(ann_page, server.url, ann)
    expect(chat_row(bob_page, "Ann Before")).to_be_visible()

    res = ann.client.patch("/api/v1/users/me", {"name": "Ann After"})
    assert res.status == 200, res.body

    # Bob's inbox and Cat's open chat change at once; so does Ann's own other tab.
    expect(chat_row(bob_page, "Ann After")).to_be_visible(timeout=LIVE_MS)
    expect(chat_row(bob_page, "Ann Before")).to_have_count(0)
    expect(cat_page.locator(".chat-title")).to_have_text("Ann After", timeout=LIVE_MS)
    expect(chat_row(cat_page, "Ann After")).to_be_visible()
    expect(ann_page.locator("#me-avatar")).to_have_text("AA", timeout=LIVE_MS)
