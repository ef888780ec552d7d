"""The chat list: search that filters chats and finds people; the All / Unread / Bots filters."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, chat_row, login_ui, send
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e


def test_search_and_filters(server: ServerThread, new_page: Callable[..., Page]) -> None:
    me = register(server.port, "sam", "Sam Searcher")
    carol = register(server.port, "carol", "Carol Quinn")
    dave = register(server.port, "dave", "Dave Quinn")
    erin = register(server.port, "erin", "Erin Nobody-Yet")
    for sender, text in ((carol, "Lunch on Friday?"), (dave, "Got the slides")):
        res = sender.client.post("/api/v1/messages", {"recipient": me.email, "content": text})
        assert res.status == 201, res.body

    page = new_page()
    login_ui(page, server.url, me)
    rows = page.locator("#chat-list .chat-row")
    expect(rows).to_have_count(2)
    # Newest first, each with its unread badge and preview.
    expect(rows.nth(0)).to_contain_text("Dave Quinn")
    expect(rows.nth(0).locator(".badge")).to_have_text("1 unread message")
    expect(chat_row(page, "Carol Quinn").locator(".preview-text")).to_have_text("Lunch on Friday?")

    # Reading Dave's chat leaves only Carol's unread.
    chat_row(page, "Dave Quinn").click()
    expect(chat_row(page, "Dave Quinn").locator(".badge")).to_have_count(0, timeout=LIVE_MS)
    page.go_back()
    expect(page).to_have_url(f"{server.url}/")
    unread = page.get_by_role("button", name="Unread")
    unread.click()
    expect(unread).to_have_attribute("aria-pressed", "true")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Carol Quinn")
    page.get_by_role("button", name="Bots").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#list-empty")).to_contain_text("No bot chats yet")
    page.get_by_role("button", name="All").click()
    expect(rows).to_have_count(2)

    # Search filters the chats by name...
    search = page.get_by_role("searchbox", name="Search chats or find people")
    search.fill("carol")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Carol Quinn")
    # ...and finds people without a chat yet (but not the ones already listed).
    search.fill("quinn")
    expect(rows).to_have_count(2)
    people = page.locator("#people-list .chat-row")
    expect(page.locator("#people-status")).to_have_text("Nobody else matches “quinn”.")
    expect(people).to_have_count(0)
    search.fill("nobody-yet")
    expect(rows).to_have_count(0)
    expect(page.locator("#list-empty")).to_contain_text("No chats match")
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text(erin.email)
    people.first.click()
    expect(page.locator(".chat-title")).to_have_text("Erin Nobody-Yet")
    expect(search).to_have_value("")
    expect(page.locator(".chat-empty")).to_contain_text("No messages yet")
    send(page, "Hello Erin")
    expect(rows.first).to_contain_text("Erin Nobody-Yet")
    expect(rows).to_have_count(3)
