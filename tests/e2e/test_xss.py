"""Message text is shown as text: markup in a message never becomes markup, and nothing runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.e2e.ui import LIVE_MS, bubbles, chat_row, login_ui, send
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    '"><svg onload=alert(3)>',
]


def test_markup_in_messages_is_inert(server: ServerThread,
                                     new_page: Callable[..., Page]) -> None:
    sender = register(server.port, "mallory", "<b onmouseover=alert(4)>Mallory</b>")
    reader = register(server.port, "victim", "Vic Tim")
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    # CSP would block inline handlers anyway; switch it off here so that only the
    # rendering (textContent, never innerHTML) stands between the payload and the page.
    pages = {"sender": new_page(bypass_csp=True), "reader": new_page(bypass_csp=True)}
    for page in pages.values():
        page.on("dialog", record)
    login_ui(pages["sender"], server.url, sender)
    login_ui(pages["reader"], server.url, reader)
    pages["sender"].goto(f"{server.url}/chat/{reader.email}")
    for payload in PAYLOADS:
        send(pages["sender"], payload)

    reader_page = pages["reader"]
    row = chat_row(reader_page, "Mallory")
    expect(row.locator(".row-name")).to_have_text("<b onmouseover=alert(4)>Mallory</b>",
                                                  timeout=LIVE_MS)
    expect(row.locator(".preview-text")).to_have_text(PAYLOADS[-1])
    row.hover()
    row.click()
    for page in pages.values():
        for payload in PAYLOADS:
            expect(bubbles(page, payload).locator(".msg-text")).to_have_text(payload,
                                                                             timeout=LIVE_MS)
        # Not one element was created from the payloads.
        assert page.locator(".msg-list img, .msg-list svg:not(.icon), .msg-list script, "
                            ".msg-list b, #chat-list b").count() == 0
    reader_page.reload()
    for payload in PAYLOADS:
        expect(bubbles(reader_page, payload).locator(".msg-text")).to_have_text(payload)
    expect(reader_page.locator(".chat-title")).to_have_text("<b onmouseover=alert(4)>Mallory</b>")
    reader_page.wait_for_timeout(300)   # give any stray handler the chance to fire
    assert dialogs == []
