"""The phone layout at 360 × 740: one pane at a time, with back navigation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import NARROW
from tests.e2e.ui import axe_violations, bubbles, chat_row, login_ui, send
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the page is {width} px wide on a {NARROW['width']} px screen"


def test_narrow_layout(server: ServerThread, new_page: Callable[..., Page]) -> None:
    me = register(server.port, "phone", "Pat Phone")
    friend = register(server.port, "pal", "Pal With A Rather Long Name For A Small Screen")
    long_word = "x" * 300
    friend.client.post("/api/v1/messages", {"recipient": me.email, "content": f"Hi! {long_word}"})
    page = new_page(viewport=NARROW, is_mobile=True, has_touch=True)
    login_ui(page, server.url, me)

    # The list fills the screen; the empty main pane is not shown.
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    no_sideways_scroll(page)

    chat_row(page, "Pal With").click()
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator(".chat-title")).to_be_visible()
    back = page.get_by_role("link", name="Back to chats")
    expect(back).to_be_visible()
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_in_viewport()
    expect(bubbles(page, "Hi!")).to_be_in_viewport()
    no_sideways_scroll(page)
    box = bubbles(page, "Hi!").locator(".bubble").bounding_box()
    assert box is not None and box["x"] + box["width"] <= NARROW["width"]
    send(page, "Replying from my phone")
    expect(bubbles(page, "Replying from my phone")).to_be_in_viewport()

    # Escape goes back to the list, with the chat that was open focused.
    page.keyboard.press("Escape")
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("#sidebar")).to_be_visible()
    expect(chat_row(page, "Pal With")).to_be_focused()

    # The browser's back and forward buttons move between the panes too.
    page.go_back()
    expect(page.locator(".chat-title")).to_be_visible()
    expect(page.locator("#sidebar")).to_be_hidden()
    back.click()
    expect(page.locator("#sidebar")).to_be_visible()

    # The other pages fit as well, each with its own way back.
    for path in ("/activity", "/settings", "/bot"):
        page.goto(f"{server.url}{path}")
        expect(page.get_by_role("link", name="Back to chats")).to_be_visible()
        expect(page.locator("#sidebar")).to_be_hidden()
        no_sideways_scroll(page)


def test_each_phone_pane_has_its_main_landmark(server: ServerThread,
                                              new_page: Callable[..., Page]) -> None:
    me = register(server.port, "landmark", "Lana Landmark")
    friend = register(server.port, "landpal", "Lee Pal")
    friend.client.post("/api/v1/messages", {"recipient": me.email, "content": "hello"})
    page = new_page(viewport=NARROW, is_mobile=True, has_touch=True, bypass_csp=True)
    login_ui(page, server.url, me)
    expect(page.locator("#main")).to_be_hidden()
    landmark_rules = {"landmark-one-main", "region", "landmark-main-is-top-level",
                      "landmark-no-duplicate-main"}
    impacts = ("minor", "moderate", "serious", "critical")
    found = [v for v in axe_violations(page, impacts) if v["id"] in landmark_rules]
    assert not found, found
    chat_row(page, "Lee Pal").click()
    expect(page.locator(".chat-title")).to_be_visible()
    found = [v for v in axe_violations(page, impacts) if v["id"] in landmark_rules]
    assert not found, found
