"""Test helpers: a real server in a background thread and a small HTTP client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import bcrypt
import orjson
import uvloop

from whatsease.app import WhatsEaseServer
from whatsease.config import Config
from whatsease.services import Services

T = TypeVar("T")
_counter = itertools.count()

TEST_ORIGIN = "http://allowed.test"


def test_config(**overrides: Any) -> Config:
    base = Config(host="127.0.0.1", port=0, db_name=f"t{secrets.token_hex(6)}",
                  jwt_secret=secrets.token_urlsafe(48), bcrypt_rounds=4,
                  allowed_origins=(TEST_ORIGIN,), log_level="WARNING",
                  login_max_failures=5, login_window=300,
                  # Words only unless a test asks for the sentence reader: it costs
                  # seconds per server (tests/bot/test_semantic.py covers "auto").
                  bot_semantic=False,
                  # Fakes of external services listen on 127.0.0.1; tests of the
                  # outbound guard start servers with this off (tests/net).
                  outbound_allow_private=True)
    return base.replace(**overrides)


class ServerThread:
    """A real WhatsEase server on 127.0.0.1 with its own uvloop event loop in a thread."""

    def __init__(self, config: Config, mongodb_uri: str) -> None:
        self.config = config
        self.mongodb_uri = mongodb_uri
        self.loop = uvloop.new_event_loop()
        self.server = WhatsEaseServer(config, mongodb_uri)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="whatsease-test-server")
        self.port = 0

    def start(self) -> ServerThread:
        self.thread.start()
        self.port = self.call(self.server.start(), timeout=60)
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self, grace: float = 5.0) -> None:
        """Shut the server down as SIGTERM would (requests under way get ``grace`` seconds)."""
        if not self.loop.is_running():
            return
        try:
            self.call(self.server.stop(grace=grace), timeout=grace + 25)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    @property
    def services(self) -> Services:
        assert self.server.services is not None
        return self.server.services

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Client:
    """A blocking HTTP client for one server; ``token`` is sent as a bearer token."""

    port: int
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, json: Any = None, *, body: bytes | None = None,
                headers: dict[str, str] | None = None, token: str | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(self.headers)
        if json is not None:
            body = orjson.dumps(json)
            sent["Content-Type"] = "application/json"
        bearer = token if token is not None else self.token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Response:
        return self.request("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


@dataclass
class User:
    email: str
    name: str
    password: str
    access_token: str
    refresh_token: str
    client: Client


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}.{secrets.token_hex(3)}@example.com"


def register(port: int, prefix: str = "user", name: str | None = None) -> User:
    """Register a fresh account and return it with a client that carries its token."""
    email = unique_email(prefix)
    password = "correct horse battery"
    res = Client(port).post("/api/v1/auth/register",
                            {"email": email, "name": name or prefix.title(), "password": password})
    assert res.status == 201, res.body
    body = res.json
    return User(email=email, name=body["user"]["name"], password=password,
                access_token=body["access_token"], refresh_token=body["refresh_token"],
                client=Client(port, token=body["access_token"]))


def wait_for(probe: Callable[[], T | None], *, timeout: float = 20.0,
             interval: float = 0.05, what: str = "condition") -> T:
    """Call ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_process_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to end; True if it did."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class HeldPasswordChecks:
    """Holds every ``bcrypt.checkpw`` call in this process at a gate until `release`.

    Install it with ``monkeypatch.setattr(bcrypt, "checkpw", held)``. It wraps
    the third-party function, it does not fake it: once released, each call
    runs the real check. A test can then act while a password check is known
    to be under way, on a loaded machine as on a quiet one, instead of hoping
    that a slow hash is still running. ``threads`` names the threads the
    checks ran on; ``timed_out`` says a call gave up waiting (after
    ``timeout`` seconds) instead of being released.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.entered = threading.Event()
        self.threads: list[str] = []
        self.timed_out = False
        self._open = threading.Event()
        self._real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def __call__(self, password: bytes, hashed_password: bytes) -> bool:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if not self._open.wait(self.timeout):
            self.timed_out = True
        return self._real(password, hashed_password)

    def release(self) -> None:
        self._open.set()
