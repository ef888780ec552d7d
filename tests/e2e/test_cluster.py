"""The web client in headless Chromium, chatting across two instances of a real cluster.

Each page is served by the instance that owns its user (no proxy here): the
client must put its routing key on the socket URL, and the frames between the
two users cross the internal link.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.cluster.conftest import cluster, homed_user, ring_of  # noqa: F401 - a fixture
from tests.e2e.ui import LIVE_MS, bubbles, login_ui, open_chat, send, tick_state
from whatsease.cluster.local import LocalCluster

pytestmark = pytest.mark.e2e


def test_two_browsers_chat_across_instances(cluster: LocalCluster,  # noqa: F811
                                            new_page: Callable[..., Page]) -> None:
    alice, a_route = homed_user(cluster, "i1", "alice")
    bob, b_route = homed_user(cluster, "i2", "bob")
    assert alice.client.post("/api/v1/messages", {"recipient": bob.email,
                                                  "content": "hello"}).status == 201
    sockets: dict[str, list[str]] = {"alice": [], "bob": []}
    pages = {}
    for name, user, route in (("alice", alice, a_route), ("bob", bob, b_route)):
        page = new_page()

        def opened(ws: WebSocket, name: str = name) -> None:
            sockets[name].append(ws.url)

        page.on("websocket", opened)
        base = f"http://127.0.0.1:{cluster.ports[ring_of(cluster).owner(route)]}"
        login_ui(page, base, user)
        pages[name] = page
    assert sockets["alice"][-1].endswith(f"/ws?route={a_route}")
    assert sockets["bob"][-1].endswith(f"/ws?route={b_route}")
    open_chat(pages["bob"], "Alice")
    open_chat(pages["alice"], "Bob")
    send(pages["alice"], "across two instances")
    expect(bubbles(pages["bob"], "across two instances")).to_have_count(1, timeout=LIVE_MS)
    # Bob has the chat open: read, and alice's tick says so (status back across the link).
    expect(tick_state(pages["alice"], "across two instances")).to_have_attribute(
        "aria-label", "Read", timeout=LIVE_MS)
    send(pages["bob"], "and back")
    expect(bubbles(pages["alice"], "and back")).to_have_count(1, timeout=LIVE_MS)
