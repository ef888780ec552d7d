"""The shared front-end core in a real browser: the HTTP client and the reconnecting socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.escape
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from playwright.sync_api import Page

from tests.support import Client, ServerThread, register
from whatsease.api import shell
from whatsease.app import STATIC_DIR

pytestmark = pytest.mark.e2e


class ScriptedSocketServer:
    """A WebSocket server on 127.0.0.1 that answers each connection's auth frame from a script.

    Each step is a close code (the connection is closed with it) or "ready".
    It stands in for a server under a database outage (1013), a restart (1012)
    or an expired token (4001), which the real server cannot be told to do.
    """

    def __init__(self, steps: list[int | str]) -> None:
        self.steps = list(steps)
        self.tokens: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    def start(self) -> ScriptedSocketServer:
        outer = self

        class Handler(tornado.websocket.WebSocketHandler):
            def check_origin(self, origin: str) -> bool:
                return True

            def on_message(self, message: str | bytes) -> None:
                outer.tokens.append(tornado.escape.json_decode(message)["token"])
                step = outer.steps.pop(0) if outer.steps else "ready"
                if step == "ready":
                    self.write_message({"type": "ready"})
                else:
                    self.close(int(step), "scripted")

        async def listen() -> int:
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            self.server = tornado.httpserver.HTTPServer(
                tornado.web.Application([(r"/ws", Handler)]))
            self.server.add_sockets(sockets)
            return int(sockets[0].getsockname()[1])

        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def scripted() -> Iterator[Callable[[list[int | str]], ScriptedSocketServer]]:
    servers: list[ScriptedSocketServer] = []

    def start(steps: list[int | str]) -> ScriptedSocketServer:
        servers.append(ScriptedSocketServer(steps).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


SOCKET_SCRIPT = """async (url) => {
  const { ReconnectingSocket } = await import('/static/shared/socket.js');
  window.seen = { states: [], refreshes: 0, token: 'old' };
  const socket = new ReconnectingSocket({
    url, token: async () => window.seen.token,
    refresh: async () => { window.seen.refreshes += 1; window.seen.token = 'fresh'; },
  });
  socket.addEventListener('state', (e) => window.seen.states.push(
    [e.detail.state, e.detail.reason || '']));
  socket.start();
}"""


def test_socket_backs_off_on_try_again_later_and_refreshes_on_4001(
        server: ServerThread, new_page: Callable[..., Page],
        scripted: Callable[[list[int | str]], ScriptedSocketServer]) -> None:
    fake = scripted([1013, 1012, 4001, "ready"])
    page = new_page(bypass_csp=True)  # the fake server is another origin
    page.goto(server.url + "/login")
    page.evaluate(SOCKET_SCRIPT, f"ws://127.0.0.1:{fake.port}/ws")
    page.wait_for_function("window.seen.states.some(([s]) => s === 'online')", timeout=20_000)
    seen = page.evaluate("window.seen")
    waits = [reason for state, reason in seen["states"] if state == "waiting"]
    # 1013 and 1012 wait with the backoff; 4001 refreshes once and comes back with the new token.
    assert waits[:3] == ["unavailable", "restart", "auth"], seen["states"]
    assert seen["refreshes"] == 1
    assert fake.tokens == ["old", "old", "old", "fresh"]


HTTP_SCRIPT = """async ([token, good]) => {
  const { ApiError, HttpClient } = await import('/static/shared/http.js');
  let current = token;
  let refreshes = 0;
  const client = new HttpClient({ token: async () => current,
    refresh: async () => { refreshes += 1; current = good; } });
  const me = await client.request('GET', '/api/v1/users/me');
  let invalid = null;
  try {
    const body = { email: 'nope', name: '', password: 'x' };
    await client.request('POST', '/api/v1/auth/register', body, { auth: false });
  } catch (error) {
    invalid = { api: error instanceof ApiError, status: error.status, fields: error.fields };
  }
  return { email: me.user ? me.user.email : me.email, refreshes, invalid };
}"""


def test_http_client_refreshes_once_and_reads_problems(server: ServerThread,
                                                       new_page: Callable[..., Page]) -> None:
    user = register(server.port, "core")
    page = new_page()
    page.goto(server.url + "/login")
    result = page.evaluate(HTTP_SCRIPT, ["expired-token", user.access_token])
    assert result["email"] == user.email
    assert result["refreshes"] == 1
    invalid = result["invalid"]
    assert invalid["api"] and invalid["status"] == 422, invalid
    assert "email" in invalid["fields"], invalid


def test_served_widget_is_one_classic_script_with_the_shared_core(server: ServerThread) -> None:
    res = Client(server.port).get("/widget.js")
    assert res.status == 200
    body = res.body.decode()
    assert body == shell.widget_bundle(STATIC_DIR).decode()
    lines = body.splitlines()
    assert not [line for line in lines if line.startswith(("import ", "export "))]
    assert "class ReconnectingSocket" in body and "class HttpClient" in body
    assert "class WidgetConnection" in body and "class WidgetView" in body
    assert "--brand" in body and "--panel:" in body  # the widget's styles and the tokens


def test_palette_is_defined_once() -> None:
    """Only the shared tokens spell the palette; the console and the widget use them."""
    tokens = (STATIC_DIR / "shared" / "tokens.css").read_text()
    assert "--accent:" in tokens and "prefers-color-scheme: dark" in tokens
    for sheet in [STATIC_DIR / "agent" / "agent.css", STATIC_DIR / "widget" / "widget.css",
                  *sorted((STATIC_DIR / "css").glob("*.css"))]:
        text = Path(sheet).read_text()
        assert "--accent:" not in text and "--text:" not in text, sheet
