"""Two people in two browsers: find each other, chat, ticks, typing, edit, delete, reload."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, bubbles, chat_row, open_chat, register_ui, send, tick_state
from tests.support import ServerThread

pytestmark = pytest.mark.e2e


def test_two_people_chat_in_real_time(server: ServerThread,
                                      new_page: Callable[..., Page]) -> None:
    alice, bob = new_page(), new_page()
    register_ui(alice, server.url, "Alice Wonder", "alice")
    bob_email = register_ui(bob, server.url, "Bob Builder", "bob")

    # Alice finds Bob by name and starts the chat from the search results.
    alice.keyboard.press("/")
    expect(alice.locator("#search")).to_be_focused()
    alice.keyboard.type("Bob Buil")
    people = alice.locator("#people-list .chat-row", has_text="Bob Builder")
    expect(people).to_contain_text(bob_email)
    people.click()
    expect(alice).to_have_url(f"{server.url}/chat/{bob_email.replace('@', '%40')}")
    expect(alice.locator(".chat-title")).to_have_text("Bob Builder")
    expect(alice.locator(".chat-sub")).to_have_text("online", timeout=LIVE_MS)
    expect(alice.locator("#search")).to_have_value("")

    # Sent, then delivered once it reaches Bob's open socket: Bob is on his inbox.
    send(alice, "Hi Bob, it's Alice")
    expect(tick_state(alice, "Hi Bob")).to_have_attribute("aria-label", "Delivered",
                                                          timeout=LIVE_MS)
    row = chat_row(bob, "Alice Wonder")
    expect(row.locator(".badge")).to_have_text("1 unread message", timeout=LIVE_MS)
    expect(row.locator(".preview-text")).to_have_text("Hi Bob, it's Alice")

    # Bob opens the chat: the message is read, and Alice's ticks turn blue at once.
    open_chat(bob, "Alice Wonder")
    expect(bob.locator(".unread-sep")).to_have_text("1 unread message")
    expect(tick_state(alice, "Hi Bob")).to_have_attribute("aria-label", "Read", timeout=LIVE_MS)
    expect(bubbles(alice, "Hi Bob").locator(".ticks")).to_have_class("ticks is-read")
    expect(row.locator(".badge")).to_have_count(0)

    # Bob types: Alice sees it in the header and in her chat list; then his reply arrives.
    composer = bob.get_by_role("textbox", name="Message")
    composer.press_sequentially("Hey Alice")
    expect(alice.locator(".chat-sub")).to_have_text("typing…", timeout=LIVE_MS)
    expect(chat_row(alice, "Bob Builder").locator(".row-preview")).to_have_text("typing…")
    composer.press("Shift+Enter")
    composer.press_sequentially("two lines")
    composer.press("Enter")
    expect(bubbles(alice, "Hey Alice")).to_have_count(1, timeout=LIVE_MS)
    expect(bubbles(alice, "Hey Alice").locator(".msg-text")).to_have_text("Hey Alice\ntwo lines")
    expect(alice.locator(".chat-sub")).to_have_text("online")
    # Alice has the chat open and focused: Bob's message is read without a click.
    expect(tick_state(bob, "Hey Alice")).to_have_attribute("aria-label", "Read", timeout=LIVE_MS)
    expect(chat_row(alice, "Bob Builder").locator(".badge")).to_have_count(0)

    # Alice edits her message; Bob sees the new text marked "edited".
    bubbles(alice, "Hi Bob").hover()
    bubbles(alice, "Hi Bob").get_by_role("button", name="Message options").click()
    alice.get_by_role("menuitem", name="Edit").click()
    editor = alice.get_by_role("textbox", name="Edit message")
    expect(editor).to_have_value("Hi Bob, it's Alice")
    editor.fill("Hi Bob, it's Alice (edited)")
    editor.press("Enter")
    edited = bubbles(bob, "(edited)")
    expect(edited.locator(".edited")).to_have_text("edited", timeout=LIVE_MS)

    # Bob deletes his reply; both sides show the deleted marker, nobody sees the text.
    bubbles(bob, "Hey Alice").get_by_role("button", name="Message options").click()
    bob.get_by_role("menuitem", name="Delete").click()
    dialog = bob.get_by_role("dialog", name="Delete this message?")
    dialog.get_by_role("button", name="Delete for everyone").click()
    expect(bubbles(bob, "You deleted this message")).to_have_count(1)
    expect(bubbles(alice, "This message was deleted")).to_have_count(1, timeout=LIVE_MS)
    expect(bubbles(alice, "Hey Alice")).to_have_count(0)

    # A reload keeps the place and the whole history, ticks included.
    alice.reload()
    expect(alice.locator(".chat-title")).to_have_text("Bob Builder")
    expect(bubbles(alice)).to_have_count(2)
    expect(bubbles(alice, "(edited)").locator(".edited")).to_be_visible()
    expect(tick_state(alice, "(edited)")).to_have_attribute("aria-label", "Read")
    expect(bubbles(alice, "This message was deleted")).to_have_count(1)
    alice.go_back()
    expect(alice).to_have_url(f"{server.url}/")

    # Bob closes his browser: Alice's header says when he was last seen.
    bob.context.close()
    alice.go_forward()
    expect(alice.locator(".chat-sub")).to_contain_text("last seen today at", timeout=LIVE_MS)
