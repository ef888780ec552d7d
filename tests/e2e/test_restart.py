"""A server restart in the middle of a conversation loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests import support
from tests.e2e.ui import bubbles, login_ui, tick_state, wait_online
from tests.support import ServerThread, register
from whatsease.storage.launcher import free_port

pytestmark = pytest.mark.e2e

# Reconnecting takes the backoff's jitter plus the new server's start-up.
RECONNECT_MS = 30_000


class AckDropper:
    """Sits between a page and the server and, while ``dropping``, loses every ``ack`` frame.

    That is the worst moment for a restart: the message is stored, but its
    sender does not know it and will send it again after reconnecting.
    """

    def __init__(self) -> None:
        self.dropping = False
        self.dropped = 0

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: self.forward(ws, message))

    def wait_for_drop(self, page: Page, timeout: float = 10.0) -> None:
        """Wait until an ack has been dropped (Playwright delivers frames while the page waits)."""
        deadline = time.monotonic() + timeout
        while not self.dropped:
            assert time.monotonic() < deadline, f"no ack was dropped within {timeout} s"
            page.wait_for_timeout(20)

    def forward(self, ws: WebSocketRoute, message: str | bytes) -> None:
        if self.dropping and isinstance(message, str) and json.loads(message).get("type") == "ack":
            self.dropped += 1
            return
        ws.send(message)


def test_restart_loses_and_duplicates_nothing(mongo_uri: str,
                                              new_page: Callable[..., Page]) -> None:
    config = support.test_config(port=free_port())
    servers = [ServerThread(config, mongo_uri).start()]
    try:
        url = servers[0].url
        alice_user = register(config.port, "alice", "Alice Restart")
        bob_user = register(config.port, "bob", "Bob Restart")
        res = alice_user.client.post("/api/v1/messages", {"recipient": bob_user.email,
                                                          "content": "before the restart"})
        assert res.status == 201, res.body

        dropper = AckDropper()
        alice, bob = new_page(), new_page()
        alice.route_web_socket("**/ws", dropper.route)
        login_ui(alice, url, alice_user)
        login_ui(bob, url, bob_user)
        alice.locator("#chat-list .chat-row", has_text="Bob Restart").click()
        bob.locator("#chat-list .chat-row", has_text="Alice Restart").click()
        expect(bubbles(bob, "before the restart")).to_have_count(1)

        # The message is stored and reaches Bob, but its ack never reaches Alice.
        dropper.dropping = True
        composer = alice.get_by_role("textbox", name="Message")
        composer.fill("sent just before the restart")
        composer.press("Enter")
        expect(bubbles(bob, "sent just before the restart")).to_have_count(1)
        dropper.wait_for_drop(alice)
        expect(tick_state(alice, "just before")).to_have_attribute("aria-label", "Sending")

        servers.pop().stop()
        # Both pages say they lost the connection, and Alice cannot send meanwhile.
        for page in (alice, bob):
            expect(page.locator("#app")).not_to_have_attribute("data-connection", "online")
            expect(page.locator("#conn-banner")).to_contain_text(re.compile("[Cc]onnect"))
        expect(composer).to_have_attribute("aria-disabled", "true")
        expect(alice.locator(".composer-reason")).to_contain_text("Not connected")
        expect(alice.get_by_role("button", name="Send")).to_be_disabled()

        dropper.dropping = False
        servers.append(ServerThread(config, mongo_uri).start())
        wait_online(alice, RECONNECT_MS)
        wait_online(bob, RECONNECT_MS)
        expect(alice.locator("#conn-banner")).to_be_hidden()
        expect(composer).to_have_attribute("aria-disabled", "false")
        # The stored message came back through sync (or the resend was recognised by
        # its client_id): Alice's clock becomes ticks, and there is still one copy.
        expect(tick_state(alice, "just before")).not_to_have_attribute("aria-label", "Sending")

        bob.get_by_role("textbox", name="Message").fill("sent after the restart")
        bob.get_by_role("textbox", name="Message").press("Enter")
        expect(bubbles(alice, "sent after the restart")).to_have_count(1)

        for page in (alice, bob):
            expect(bubbles(page, "sent just before the restart")).to_have_count(1)
            page.reload()
            wait_online(page)
            expect(bubbles(page)).to_have_count(3)
            expect(bubbles(page, "sent just before the restart")).to_have_count(1)
            expect(bubbles(page, "sent after the restart")).to_have_count(1)
        history = alice_user.client.get(f"/api/v1/messages?with={bob_user.email}").json
        contents = [m["content"] for m in history["messages"]]
        assert contents.count("sent just before the restart") == 1, contents
        assert len(contents) == 3, contents
    finally:
        for server in servers:
            server.stop()
