"""A message whose live frame was lost comes back by sync, even if later frames arrived."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.ui import bubbles, login_ui, open_chat, wait_online
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e

# The client reconnects at once after 4012, jittered over about a second.
RECONNECT_MS = 15_000
LOST = "lost in transit"


class FrameDropper:
    """Sits between a page and the server and loses the ``message`` frame with ``LOST``.

    As a link between instances may: the message is stored, the frame never
    arrives, and later frames do.
    """

    def __init__(self) -> None:
        self.dropped = 0
        self.sockets: list[WebSocketRoute] = []

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.sockets.append(ws)
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: self.forward(ws, message))

    def forward(self, ws: WebSocketRoute, message: str | bytes) -> None:
        if isinstance(message, str):
            frame = json.loads(message)
            if frame.get("type") == "message" and frame["message"]["content"] == LOST:
                self.dropped += 1
                return
        ws.send(message)

    def wait_for_drop(self, page: Page, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.dropped:
            assert time.monotonic() < deadline, f"no frame was dropped within {timeout} s"
            page.wait_for_timeout(20)


def test_a_lost_live_frame_comes_back_by_sync_after_a_later_one_arrived(
        server: ServerThread, new_page: Callable[..., Page]) -> None:
    alice = register(server.port, "alice", "Alice Cursor")
    bob = register(server.port, "bob", "Bob Cursor")
    res = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": "hello"})
    assert res.status == 201, res.body
    dropper = FrameDropper()
    page = new_page()
    page.route_web_socket("**/ws", dropper.route)
    login_ui(page, server.url, bob)
    open_chat(page, "Alice Cursor")
    expect(bubbles(page, "hello")).to_have_count(1)

    for content in (LOST, "arrives live"):
        res = alice.client.post("/api/v1/messages", {"recipient": bob.email,
                                                     "content": content})
        assert res.status == 201, res.body
        if content == LOST:
            dropper.wait_for_drop(page)
    expect(bubbles(page, "arrives live")).to_have_count(1)
    expect(bubbles(page, LOST)).to_have_count(0)

    # "Frames may have been missed": the client reconnects and syncs from its cursor.
    dropper.sockets[-1].close(code=4012, reason="moved")
    expect(page.locator("#app")).not_to_have_attribute("data-connection", "online")
    wait_online(page, RECONNECT_MS)
    expect(bubbles(page, LOST)).to_have_count(1, timeout=RECONNECT_MS)
    expect(bubbles(page, "arrives live")).to_have_count(1)
    expect(bubbles(page)).to_have_count(3)
