"""A blocking WebSocket test client (websocket-client) that waits for frames by predicate."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import orjson
import websocket

from tests.support import ServerThread, User

Predicate = Callable[[dict[str, Any]], bool]
# How long a frame that must come may take: generous, for a loaded machine (a
# passing test never waits it out; negative checks pass their own, short, timeout).
WAIT_SECS = 15.0


class ClosedError(AssertionError):
    """The server closed the socket while a frame was still expected."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed with {code} ({reason!r})")
        self.code = code
        self.reason = reason


class WS:
    """One socket. Frames read but not yet matched stay in ``backlog`` for later `expect` calls."""

    def __init__(self, sock: websocket.WebSocket) -> None:
        self.sock = sock
        self.backlog: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_reason = ""

    def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            self.sock.send(orjson.dumps(frame).decode())
        elif isinstance(frame, bytes):
            self.sock.send(frame.decode())
        else:
            self.sock.send(frame)

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The next text frame, or None at the deadline; raises `ClosedError` on close."""
        if self.close_code is not None:
            raise ClosedError(self.close_code, self.close_reason)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            frame = self.sock.recv_frame()
        except (TimeoutError, websocket.WebSocketTimeoutException):
            return None
        except (OSError, websocket.WebSocketConnectionClosedException):
            self.close_code = self.close_code or 1006
            raise ClosedError(self.close_code, "connection dropped") from None
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
            self.close_reason = data[2:].decode(errors="replace")
            # The server may have dropped the connection already.
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self.sock.send_close()
            raise ClosedError(self.close_code, self.close_reason)
        if frame.opcode == websocket.ABNF.OPCODE_PING:
            self.sock.pong(frame.data)
            return {}
        if frame.opcode != websocket.ABNF.OPCODE_TEXT:
            return {}
        return orjson.loads(frame.data)

    def expect(self, kind: str, where: Predicate | None = None,
               timeout: float = WAIT_SECS) -> dict[str, Any]:
        """The first frame of type ``kind`` matching ``where``, waiting up to ``timeout``."""
        def matches(f: dict[str, Any]) -> bool:
            return f.get("type") == kind and (where is None or where(f))

        for i, seen in enumerate(self.backlog):
            if matches(seen):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read(deadline)
            if frame is None:
                raise AssertionError(f"no {kind} frame within {timeout} s; unmatched: "
                                     f"{self.backlog[-10:]}")
            if matches(frame):
                return frame
            if frame:
                self.backlog.append(frame)

    def expect_none(self, kind: str, where: Predicate | None = None,
                    timeout: float = 0.5) -> None:
        """Assert that no such frame arrives within ``timeout``."""
        try:
            frame = self.expect(kind, where, timeout)
        except AssertionError as exc:
            if isinstance(exc, ClosedError):
                raise
            return
        raise AssertionError(f"unexpected {kind} frame: {frame}")

    def expect_close(self, timeout: float = WAIT_SECS) -> int:
        """Read until the server closes; returns the close code."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                frame = self._read(deadline)
                if frame is None:
                    raise AssertionError(f"socket still open after {timeout} s")
                if frame:
                    self.backlog.append(frame)
        except ClosedError as exc:
            assert exc.code is not None
            return exc.code

    def call(self, frame: dict[str, Any], reply: str, timeout: float = WAIT_SECS,
             where: Predicate | None = None) -> dict[str, Any]:
        self.send(frame)
        return self.expect(reply, where, timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.sock.close()


def open_socket(server: ServerThread, *, origin: str | None = None,
                rcvbuf: int | None = None) -> WS:
    """A connected, not yet authenticated socket. ``origin`` defaults to the server's own."""
    options: dict[str, Any] = {"timeout": WAIT_SECS}
    if origin is not None:
        options["origin"] = origin
    if rcvbuf is not None:
        options["sockopt"] = [(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)]
    return WS(websocket.create_connection(server.ws_url, **options))


def connect(server: ServerThread, user: User, **kwargs: Any) -> WS:
    """A socket authenticated as ``user``, after its ``ready`` frame."""
    ws = open_socket(server, **kwargs)
    ready = ws.call({"type": "auth", "token": user.access_token}, "ready")
    assert ready["user"] == user.email
    return ws
