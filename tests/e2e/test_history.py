"""Long conversations page in from the top without losing the reader's place; composer limits."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import bubbles, login_ui
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e

TOTAL = 130
PAGE = 50
MAX_CHARS = 4096


def test_older_pages_keep_the_scroll_position(server: ServerThread,
                                              new_page: Callable[..., Page]) -> None:
    me = register(server.port, "reader", "Rhea Reader")
    friend = register(server.port, "writer", "Will Writer")

    def post(n: int) -> int:
        return me.client.post("/api/v1/messages", {"recipient": friend.email,
                                                   "content": f"message {n:03d}"}).status

    # In order (one at a time), so that ids and timestamps follow the numbers.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert set(pool.map(post, range(1, TOTAL + 1))) == {201}

    page = new_page()
    login_ui(page, server.url, me)
    page.locator("#chat-list .chat-row").first.click()
    log = page.get_by_role("log")
    expect(bubbles(page)).to_have_count(PAGE)
    expect(bubbles(page, f"message {TOTAL:03d}")).to_be_in_viewport()
    expect(log).to_have_attribute("aria-label", "Messages with Will Writer")

    for loaded in (2 * PAGE, TOTAL):
        anchor = page.locator(f'.msg[data-id="{bubbles(page).first.get_attribute("data-id")}"]')
        # Scroll to the top and measure in the same task, before any page can arrive.
        top_before = log.evaluate("""(el) => {
            el.scrollTop = 0;
            return el.querySelector('.msg:not(.skeleton)').getBoundingClientRect().top;
        }""")
        expect(bubbles(page)).to_have_count(loaded)
        top_after = anchor.evaluate("el => el.getBoundingClientRect().top")
        # The message that was at the top stays where it was on screen.
        assert abs(top_after - top_before) < 4, (top_before, top_after)
    expect(page.locator(".older")).to_have_text(
        "This is the start of your conversation with Will Writer.")
    texts = bubbles(page).locator(".msg-text").all_inner_texts()
    assert texts == [f"message {n:03d}" for n in range(1, TOTAL + 1)]


def test_composer_grows_counts_and_refuses(server: ServerThread,
                                          new_page: Callable[..., Page]) -> None:
    me = register(server.port, "typist", "Tia Typist")
    friend = register(server.port, "recipient", "Rex Recipient")
    page = new_page()
    login_ui(page, server.url, me)
    page.goto(f"{server.url}/chat/{friend.email}")
    composer = page.get_by_role("textbox", name="Message")
    reason = page.locator(".composer-reason")
    counter = page.locator(".composer-count")

    # Whitespace is not a message.
    composer.fill("   \n  ")
    composer.press("Enter")
    expect(reason).to_contain_text("empty messages are not sent")
    expect(bubbles(page)).to_have_count(0)

    # The box grows with its lines, up to a limit, then scrolls.
    composer.fill("one")
    one_line = composer.bounding_box()
    composer.fill("one\ntwo\nthree")
    three_lines = composer.bounding_box()
    assert one_line and three_lines and three_lines["height"] > one_line["height"] + 30
    composer.fill("\n".join(str(n) for n in range(40)))
    tall = composer.bounding_box()
    assert tall and tall["height"] <= 161

    # The counter shows near the limit; over it, sending is refused with the reason.
    expect(counter).to_be_hidden()
    composer.fill("a" * (MAX_CHARS + 4))
    expect(counter).to_have_text("4,100 / 4,096")
    expect(counter).to_have_class("composer-count is-over")
    expect(reason).to_contain_text("Too long by 4 characters")
    composer.press("Enter")
    expect(reason).to_contain_text("4 characters too long")
    expect(bubbles(page)).to_have_count(0)
    composer.fill("é" * MAX_CHARS)     # characters, not bytes
    expect(counter).to_have_text("4,096 / 4,096")
    expect(reason).to_be_empty()
    composer.press("Enter")
    expect(bubbles(page)).to_have_count(1)
    expect(bubbles(page).locator(".ticks [role=img]")).to_have_attribute("aria-label", "Sent")
    expect(counter).to_be_hidden()
    stored = me.client.get(f"/api/v1/messages?with={friend.email}").json["messages"]
    assert [len(m["content"]) for m in stored] == [MAX_CHARS]

    # A half-written message waits in its chat while you look elsewhere.
    composer.fill("to be continued")
    page.get_by_role("link", name="Activity").click()
    page.go_back()
    expect(page.get_by_role("textbox", name="Message")).to_have_value("to be continued")
