"""The WebSocket endpoint ``/ws``: transport, origin check and authentication."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import tornado.websocket
from tornado.routing import URLSpec

from whatsease.api.openapi import WEBSOCKET_HEADERS, WEBSOCKET_RESPONSES
from whatsease.errors import AppError
from whatsease.realtime.frames import (
    WS_1012_SERVICE_RESTART,
    WS_4001_UNAUTHENTICATED,
    WS_4003_FORBIDDEN_ORIGIN,
    WS_4008_TOO_SLOW,
)
from whatsease.realtime.protocol import TRANSPORT_MAX_FRAME_BYTES, parse, peek_ref
from whatsease.realtime.service import (
    AUTH_TIMEOUT_SECS,
    ClientSession,
    Realtime,
    SendQueue,
    count_in,
    count_out,
)
from whatsease.services import Services

logger = logging.getLogger(__name__)

# The kernel's send buffer per socket, in bytes (Linux doubles it for its
# bookkeeping). Chat frames are small; a sync page of 200 long messages is
# under 1 MiB and drains at this size in a few round trips.
KERNEL_SEND_BUFFER_BYTES = 128 * 1024
# Close reasons are sent to the client; keep them short (at most 123 bytes).
REASON_AUTH_TIMEOUT = "authenticate within 5 s: send {type: auth, token}"


def write_http_error(handler: tornado.websocket.WebSocketHandler, status_code: int) -> None:
    """Answer a plain HTTP request to a socket path (``POST /ws``, say) with problem+json,
    like the REST API; a 405 names the one method a socket answers."""
    error = AppError(handler._reason)
    error.status, error.code, error.title = status_code, "http_error", handler._reason
    if status_code == 405:
        handler.set_header("Allow", "GET")
    handler.set_header("Content-Type", "application/problem+json; charset=utf-8")
    handler.finish(orjson.dumps(error.to_problem(instance=handler.request.path)))


class OwnSiteSocket(tornado.websocket.WebSocketHandler):
    """A socket only pages of this site (or `WHATSEASE_ALLOWED_ORIGINS`) may open.

    The handshake is accepted from any origin so that a refused origin can
    be told why with close code 4003 (returning False from `check_origin`
    would answer a bare HTTP 403 that browsers do not expose to scripts):
    `open` calls `refused_origin` first, and nothing is read or sent on such
    a socket besides the close.

    .. warning:: The origin check is what stops another website from using a
       visitor's browser to open a socket; tokens travel in the first frame,
       never in the URL, so they are not in access logs either.
    """

    services: Services
    # No Origin header: not a browser (browsers always send one), so nothing
    # a website could make a visitor's browser do.
    _origin_ok = True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        write_http_error(self, status_code)

    def check_origin(self, origin: str) -> bool:
        self._origin_ok = origin_allowed(origin, self.request.host,
                                         self.services.config.allowed_origins)
        return True

    def refused_origin(self) -> bool:
        """Close with 4003 if the page's origin is not allowed; whether it was closed."""
        if self._origin_ok:
            return False
        self.close(WS_4003_FORBIDDEN_ORIGIN, "origin not allowed")
        return True


class SocketHandler(OwnSiteSocket):
    """One client's socket (``/ws``). Implements the hub's ``Connection``."""

    user: str
    session_id: str

    def initialize(self, services: Services) -> None:
        self.services = services
        self.realtime: Realtime = services.extras["realtime"]
        self.user = ""
        self.session_id = ""
        self.session: ClientSession | None = None
        self.queue = SendQueue(services.config.ws_queue_frames)
        self._closing = False
        self._auth_timer: asyncio.TimerHandle | None = None

    # Frames up to TRANSPORT_MAX_FRAME_BYTES reach on_message so that those
    # over the protocol's 64 KiB get an error frame; larger ones are cut off
    # by Tornado with close 1009.
    @property
    def max_message_size(self) -> int:
        return TRANSPORT_MAX_FRAME_BYTES

    def get_compression_options(self) -> dict[str, Any] | None:
        # Chat frames are small; deflate would cost CPU and memory per socket.
        return None

    def open(self, *args: str, **kwargs: str) -> None:
        if self.refused_origin():
            return
        if self.services.draining:
            self.close(WS_1012_SERVICE_RESTART, "server restarting")
            return
        self._auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_SECS, self.close, WS_4001_UNAUTHENTICATED, REASON_AUTH_TIMEOUT)
        self._bound_kernel_buffer()
        # Frames are small and often follow each other (ack, status,
        # activity): without this, Nagle's algorithm holds the second one
        # back until the client's delayed ACK, up to 40 ms.
        self.set_nodelay(True)

    def _bound_kernel_buffer(self) -> None:
        # Linux grows a socket's send buffer up to tcp_wmem's maximum (4 MiB
        # by default) while the peer is not reading: that memory is outside
        # our frame queue's count. A fixed size bounds it and, by disabling
        # that growth, lets a stalled reader reach the 4008 bound sooner.
        stream = self.ws_connection.stream if self.ws_connection is not None else None
        sock = getattr(stream, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)

    def on_message(self, message: str | bytes) -> Any:
        if self._closing:
            return None
        if self.session is None:
            # Tornado reads nothing more until this returns: frames pipelined
            # behind auth wait for it.
            return self._authenticate(message)
        try:
            frame = parse(message)
        except AppError as exc:
            count_in("invalid")
            self.session.error(exc.code, exc.detail, peek_ref(message), exc.errors)
            return None
        return self.session.receive(frame)

    async def _authenticate(self, message: str | bytes) -> None:
        try:
            frame = parse(message)
            principal = await self.realtime.authenticate(frame)
        except AppError as exc:
            count_in("auth")
            self.close(WS_4001_UNAUTHENTICATED, exc.detail[:120])
            return
        count_in("auth")
        if self._closing:
            return
        self._cancel_auth_timer()
        self.user = principal.email
        self.session_id = principal.session_id
        self.session = self.realtime.attach(self)
        self.send_frame(self.session.ready_frame())
        for typing in self.session.typing_frames():
            self.send_frame(typing)

    def send_frame(self, data: bytes) -> None:
        """Queue an encoded frame; a socket over its queue bound is closed with 4008."""
        if self._closing or self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            future = self.write_message(data)
        except tornado.websocket.WebSocketClosedError:
            return
        count_out(data)
        if not self.queue.track(future):
            logger.warning("closing a socket of %s: %d frames unsent", self.user,
                           self.queue.pending)
            if self.session is not None:
                self.session.overflowed()
            self.close(WS_4008_TOO_SLOW, "too slow: send queue full")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close with ``code``; the socket leaves the hub at once, before the close handshake."""
        if not self._closing:
            self._closing = True
            self._cancel_auth_timer()
            if self.session is not None:
                self.realtime.detach(self)
        super().close(code, reason)

    def on_close(self) -> None:
        self._closing = True
        self._cancel_auth_timer()
        if self.session is not None:
            self.realtime.detach(self)
            self.session.release()
            self.session = None  # break the handler <-> session cycle

    def _cancel_auth_timer(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def __repr__(self) -> str:
        return f"<SocketHandler user={self.user or '-'}>"


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser page at ``origin`` may open a socket to this server at ``host``.

    The server's own origin (same host and port as the request's Host header)
    is always allowed, and so is any listed in ``WHATSEASE_ALLOWED_ORIGINS``
    (``*`` allows every origin).
    """
    origin = origin.strip().rstrip("/").lower()
    if "*" in allowed or origin in (o.lower() for o in allowed):
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host.lower()


def routes(services: Services) -> list[URLSpec]:
    return [URLSpec(r"/ws$", SocketHandler, {"services": services}, name="/ws")]


OPENAPI: dict[str, dict[str, Any]] = {
    "/ws": {"get": {
        "summary": "Open the real-time WebSocket",
        "description": (
            "Upgrade to a WebSocket (RFC 6455). JSON text frames, each with a `type`. "
            "The first frame must be `{\"type\":\"auth\",\"token\":ACCESS_TOKEN}` within "
            "5 s (never a token in the URL); the server answers `ready` or closes with "
            "4001. Client frames: send, delivered, read, typing, sync, ping. Server frames: "
            "ready, ack, message, status, typing, presence, synced, activity, pong, error. "
            "Close codes: 4001 unauthenticated, 4003 origin not allowed, 4008 too slow "
            "(send queue full), 4029 rate-limited, 1012 server restarting (reconnect and "
            "sync). Frames over 64 KiB get an error frame; over 80 KiB the transport "
            "closes with 1009. Browsers send Origin: it must be this server's own origin or "
            "one of WHATSEASE_ALLOWED_ORIGINS, else the socket closes with 4003. See "
            "README.md, \"Real-time protocol\"."),
        "tags": ["real-time"],
        "security": [],
        "parameters": WEBSOCKET_HEADERS,
        "responses": WEBSOCKET_RESPONSES,
    }},
}
