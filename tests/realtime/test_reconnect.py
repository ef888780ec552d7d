"""Reconnect and sync under traffic: a tab that drops out ends where one that stayed does.

asyncio clients (Tornado's) run concurrently on the test's loop against the
shared server, which runs on its own loop in another thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.support import ServerThread, User, register
from whatsease.storage.models import STATUS_RANK

MESSAGES_FROM_ALICE = 100
REPLY_EVERY = 6  # bob answers every sixth message
SEND_INTERVAL_SECS = 0.01
WAIT_SECS = 15.0
# These tests send faster than a person would.
GENEROUS = {"ws_send_rate": 1000.0, "ws_send_burst": 1000}


class Tab:
    """One client socket keeping the local state a real client would: messages by id."""

    def __init__(self, server: ServerThread, user: User, name: str) -> None:
        self.server = server
        self.user = user
        self.name = name
        self.conn: WebSocketClientConnection | None = None
        self.messages: dict[str, dict[str, Any]] = {}
        self.live_message_frames: Counter[str] = Counter()
        self.acks: dict[str, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.receipts = False  # act as the reading client: send delivered, then read
        self.errors: list[dict[str, Any]] = []
        self.early_statuses: dict[str, str] = {}
        self._reader: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    async def open(self) -> None:
        request = HTTPRequest(self.server.ws_url,
                              headers={"Origin": f"http://127.0.0.1:{self.server.port}"})
        self.conn = await websocket_connect(request)
        await self.conn.write_message(orjson.dumps({"type": "auth",
                                                    "token": self.user.access_token}).decode())
        raw = await asyncio.wait_for(self.conn.read_message(), WAIT_SECS)
        assert raw is not None and orjson.loads(raw)["type"] == "ready", raw
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(self.conn))

    async def sync(self) -> None:
        """Ask for everything after our cursor, page by page, until ``more`` is false."""
        self._synced.clear()
        await self.send({"type": "sync", "after": self.cursor})
        await asyncio.wait_for(self._synced.wait(), WAIT_SECS)

    async def drop(self) -> None:
        """Vanish without a goodbye, as a client losing its network would."""
        assert self.conn is not None and self._reader is not None
        self.conn.close()
        self._reader.cancel()
        self.conn = None

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.conn is not None
        await self.conn.write_message(orjson.dumps(frame).decode())

    async def _read_loop(self, conn: WebSocketClientConnection) -> None:
        while True:
            raw = await conn.read_message()
            if raw is None:
                return
            await self._apply(orjson.loads(raw))

    def _merge(self, message: dict[str, Any]) -> None:
        """Upsert by id; a status only moves forward.

        A ``status`` frame can overtake the ``synced`` page that brings its
        message (the page was read just before the receipt was stored), so
        statuses of messages not yet known are kept and applied on arrival.
        """
        mid = message["message_id"]
        known = self.messages.setdefault(mid, dict(message))
        for status in (message["status"], self.early_statuses.pop(mid, "Sent")):
            if STATUS_RANK[status] > STATUS_RANK[known["status"]]:
                known["status"] = status

    async def _apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message":
            message = frame["message"]
            self.live_message_frames[message["message_id"]] += 1
            self._merge(message)
            if self.receipts and message["recipient"] == self.user.email:
                mid = message["message_id"]
                await self.send({"type": "delivered", "message_ids": [mid]})
                await self.send({"type": "read", "message_ids": [mid]})
        elif kind == "ack":
            self.acks[frame["client_id"]] = frame["message"]
            self._merge(frame["message"])
        elif kind == "status":
            mid, status = frame["message_id"], frame["status"]
            known = self.messages.get(mid)
            if known is not None:
                self._merge({**known, "status": status})
            elif STATUS_RANK[status] > STATUS_RANK[self.early_statuses.get(mid, "Sent")]:
                self.early_statuses[mid] = status
        elif kind == "synced":
            for message in frame["messages"]:
                self._merge(message)
            self.cursor = frame["cursor"]
            if frame["more"]:
                await self.send({"type": "sync", "after": self.cursor})
            else:
                self._synced.set()
        elif kind == "error":
            self.errors.append(frame)

    def state(self) -> dict[str, tuple[str, str, str]]:
        return {mid: (m["sender"], m["content"], m["status"]) for mid, m in self.messages.items()}

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self._reader is not None:
            self._reader.cancel()


async def _eventually(condition: Any) -> bool:
    deadline = time.monotonic() + WAIT_SECS
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


async def test_reconnecting_tab_ends_with_the_same_messages_and_statuses(
        make_server: Callable[..., ServerThread]) -> None:
    server = make_server(**GENEROUS)
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    sender = Tab(server, alice, "alice")
    reader = Tab(server, bob, "bob-reader")
    reader.receipts = True
    steady = Tab(server, bob, "bob-steady")
    flaky = Tab(server, bob, "bob-flaky")
    for tab in (sender, reader, steady, flaky):
        await tab.open()
    await flaky.sync()

    # Several outages, short and long, while messages and receipts flow.
    drop_at, back_at = {12, 35, 50, 66, 80}, {20, 44, 53, 75, 81}
    replies = 0
    for i in range(MESSAGES_FROM_ALICE):
        await sender.send({"type": "send", "client_id": f"a{i}", "recipient": bob.email,
                           "content": f"message {i}"})
        if i % REPLY_EVERY == 0:
            await reader.send({"type": "send", "client_id": f"b{i}", "recipient": alice.email,
                               "content": f"reply {i}"})
            replies += 1
        if i in drop_at:
            await flaky.drop()
        if i in back_at:
            await flaky.open()
            await flaky.sync()
        await asyncio.sleep(SEND_INTERVAL_SECS)

    total = MESSAGES_FROM_ALICE + replies

    def settled(tab: Tab) -> bool:
        from_alice = [m for m in tab.messages.values() if m["sender"] == alice.email]
        return len(tab.messages) == total and all(m["status"] == "Read" for m in from_alice)

    assert await _eventually(lambda: len(sender.acks) == MESSAGES_FROM_ALICE)
    assert await _eventually(lambda: settled(steady)), (len(steady.messages), total)
    assert await _eventually(lambda: flaky.state() == steady.state()), (
        set(steady.state().items()) ^ set(flaky.state().items()))

    # And both agree with the database.
    history: list[dict[str, Any]] = []
    before = ""
    while True:
        page = bob.client.get(f"/api/v1/messages?with={alice.email}&limit=100{before}").json
        history += page["messages"]
        if not page["next_before"]:
            break
        before = f"&before={page['next_before']}"
    stored = {m["message_id"]: (m["sender"], m["content"], m["status"]) for m in history}
    assert steady.state() == stored
    # Nothing arrived twice on a socket that stayed connected.
    assert max(steady.live_message_frames.values()) == 1
    assert max(flaky.live_message_frames.values()) == 1
    assert len(steady.live_message_frames) == total
    for tab in (sender, reader, steady, flaky):
        assert not tab.errors, tab.errors
        await tab.close()


async def test_sync_never_skips_a_change_under_concurrent_writes(
        make_server: Callable[..., ServerThread]) -> None:
    """Syncing over and over while messages and receipts flow ends with every message."""
    server = make_server(**GENEROUS)
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    sender = Tab(server, alice, "alice")
    reader = Tab(server, bob, "bob-reader")
    reader.receipts = True
    poller = Tab(server, bob, "bob-poller")
    for tab in (sender, reader):
        await tab.open()
    poller_conn_opened = False
    count = 80

    async def poll() -> None:
        # A client that never keeps its live frames: only sync tells it anything.
        nonlocal poller_conn_opened
        await poller.open()
        poller_conn_opened = True
        while len(poller.messages) < count or any(
                m["status"] != "Read" for m in poller.messages.values()):
            await poller.sync()
            await asyncio.sleep(0.01)

    poller.live_message_frames = Counter()
    poller_apply = poller._apply

    async def sync_only(frame: dict[str, Any]) -> None:
        if frame["type"] in ("synced", "error"):
            await poller_apply(frame)

    poller._apply = sync_only  # type: ignore[method-assign]
    polling = asyncio.get_running_loop().create_task(poll())
    for i in range(count):
        await sender.send({"type": "send", "client_id": f"c{i}", "recipient": bob.email,
                           "content": f"n{i}"})
        if i % 10 == 0:
            await asyncio.sleep(0.005)
    await asyncio.wait_for(polling, WAIT_SECS)
    assert poller_conn_opened
    assert sorted(int(m["content"][1:]) for m in poller.messages.values()) == list(range(count))
    for tab in (sender, reader, poller):
        assert not tab.errors, tab.errors
        await tab.close()
