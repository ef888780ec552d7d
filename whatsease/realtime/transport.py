"""The one WebSocket transport every socket (``/ws``, ``/widget/ws``, ``/support/ws``) is built on.

`Socket` owns everything that is not the conversation itself: the origin
check, first-frame authentication with a deadline, the frame-size limit, the
bounded send queue, error frames, close codes and a graceful close. A socket
silent for most of two ``websocket_ping_interval`` (``app.py``) is pinged from
one timer wheel per application (keepalive.py), not from a task per socket. A subclass implements
three hooks: `authenticate` (the first frame), `receive` (every later frame)
and `leave` (the socket closed); everything it sends goes through
`send_frame`, which is what the hub calls too. The frames a socket is sent in
one turn of the event loop go out in one write at the end of it (`_flush`),
straight to the kernel when nothing of the socket's is waiting already.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import socket
import struct
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket
from tornado.iostream import IOStream, StreamClosedError

from whatsease.cluster.routing import (
    REASON_WRONG_ROUTE,
    ROUTE_PARAM,
    WS_4011_WRONG_ROUTE,
    WS_4012_MOVED,
    valid_route,
)
from whatsease.delivery.frames import (
    WS_1011_INTERNAL_ERROR,
    WS_1012_SERVICE_RESTART,
    WS_1013_TRY_AGAIN_LATER,
    WS_4001_UNAUTHENTICATED,
    WS_4003_FORBIDDEN_ORIGIN,
    WS_4008_TOO_SLOW,
    error_frame,
)
from whatsease.errors import AppError, Forbidden, ServiceUnavailable
from whatsease.realtime.keepalive import HEARD, Keepalive
from whatsease.realtime.protocol import TRANSPORT_MAX_FRAME_BYTES
from whatsease.realtime.sendqueue import SendQueue
from whatsease.services import Services
from whatsease.storage.faults import database_unreachable

logger = logging.getLogger(__name__)

# A socket must send its auth frame within this many seconds of connecting.
AUTH_TIMEOUT_SECS = 5.0
# Authentication itself (a token check, a session lookup) must finish within
# this: past it the server, not the client, is at fault, and the client is
# told to come back later (1013) rather than that its token is bad (4001).
AUTH_WORK_SECS = 10.0
# The kernel's send buffer per socket, in bytes (Linux doubles it for its
# bookkeeping). Chat frames are small; a sync page of 200 long messages is
# under 1 MiB and drains at this size in a few round trips.
KERNEL_SEND_BUFFER_BYTES = 128 * 1024
# Close reasons are sent to the client; keep them short (at most 123 bytes).
REASON_AUTH_TIMEOUT = "authenticate within 5 s: send {type: auth, token}"
REASON_TRY_AGAIN = "the database is unreachable; reconnect in a few seconds"
REASON_PING_TIMEOUT = "ping timed out"
# RFC 6455 §5.2: FIN set, opcode 1 (text). Server frames are never masked,
# and these sockets never compress (`get_compression_options`).
_TEXT_FIN = 0x81
# A ping with no payload (FIN, opcode 9, length 0): the keep-alive wheel's.
_PING = b"\x89\x00"
_READ = tornado.ioloop.IOLoop.READ
# A socket's states (`Socket._state`).
_OPEN, _JOINED, _CLOSING = 0, 1, 2

# While a socket's stream holds fewer unread bytes than this, its read watcher
# stays registered between frames (`SteadyReads`); past it Tornado's own rule
# applies and reading pauses, so a client that sends faster than its frames
# are handled still meets the server's backpressure (at most this plus one
# 64 KiB read chunk buffered).
STEADY_READ_BYTES = 64 * 1024

# One keep-alive wheel per application (tests run several in one process),
# built with the application's ping settings when its first socket opens.
_KEEPALIVES: weakref.WeakKeyDictionary[tornado.web.Application, Keepalive] = (
    weakref.WeakKeyDictionary())


class SteadyReads:
    """Stands in for a socket stream's IOLoop so that its read watcher does not flip per frame.

    Tornado's stream reads a frame in parts (header, mask, payload): when the
    header's read completes, the payload is already in its buffer and no read
    is pending for a moment, so it unregisters the socket's read watcher, and
    registers it again when the next frame's read starts: two watcher changes
    in uvloop (4.7-7.5 us of CPU together, measured) for every frame a client
    sends. While little is buffered the watcher is kept instead; a read event
    that comes while no read is pending then just fills the buffer, up to
    `STEADY_READ_BYTES`. Everything else goes to the real IOLoop.
    """

    __slots__ = ("_loop", "_stream")

    def __init__(self, loop: tornado.ioloop.IOLoop, stream: IOStream) -> None:
        self._loop = loop
        self._stream: IOStream | None = stream

    def update_handler(self, fd: Any, events: int) -> None:
        stream = self._stream
        if (not events & _READ and stream is not None and not stream.closed()
                and getattr(stream, "_read_buffer_size", STEADY_READ_BYTES) < STEADY_READ_BYTES):
            events |= _READ
            # The stream's own record of what is registered: with READ in it, its
            # next change (the buffer grew, say) comes here again to be decided,
            # and its next read finds the watcher in place and changes nothing.
            stream._state = events
        self._loop.update_handler(fd, events)

    def remove_handler(self, fd: Any) -> None:
        # The stream is closing: forget it, so that the stream and its stand-in
        # are not a reference cycle left for the collector (which freezes what
        # survives while sockets are many).
        self._stream = None
        self._loop.remove_handler(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def _to_kernel(stream: IOStream, payload: bytes) -> bytes:
    """Hand ``payload`` to the kernel now if nothing of the stream's waits to be written;
    returns what it did not take (all of it when something waits), for Tornado's ``write``.

    Tornado's ``write`` makes a future for every write and schedules its
    callbacks for a later turn of the loop; a socket whose reader keeps up
    never needs them.
    """
    if type(stream) is not IOStream or stream.writing():
        return payload
    try:
        sent = stream.write_to_fd(memoryview(payload))
    except OSError:
        sent = 0  # Tornado's write meets the error again and closes the stream
    return payload[sent:]


async def _answered() -> None:
    """The handshake was answered without an upgrade (a replay): nothing left to run."""


def keepalive_of(application: tornado.web.Application) -> Keepalive | None:
    """The application's keep-alive wheel; None when its ping interval is 0 (no pings)."""
    wheel = _KEEPALIVES.get(application)
    if wheel is None:
        interval = application.settings.get("websocket_ping_interval") or 0
        if interval <= 0:
            return None
        wheel = Keepalive(interval, application.settings.get("websocket_ping_timeout"))
        _KEEPALIVES[application] = wheel
    return wheel


def origin_allowed(origin: str, host: str, allowed: Sequence[str]) -> bool:
    """Whether a browser page at ``origin`` may open a socket to this server at ``host``.

    The server's own origin (same host and port as the request's Host header)
    is always allowed, and so is any listed in ``allowed`` (``*`` allows every
    origin).
    """
    origin = origin.strip().rstrip("/").lower()
    if "*" in allowed or origin in (o.lower() for o in allowed):
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host.lower()


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the server cannot do this now" rather than "the client is wrong"."""
    return isinstance(exc, ServiceUnavailable | TimeoutError) or database_unreachable(exc)


class Socket(tornado.websocket.WebSocketHandler, abc.ABC):
    """A socket that authenticates with its first frame. Implements the hub's ``Connection``.

    The handshake is accepted from any origin so that a refused origin can be
    told why with close code 4003 (returning False from `check_origin` would
    answer a bare HTTP 403 that browsers do not expose to scripts): nothing is
    read or sent on such a socket besides the close.

    .. warning:: The origin check is what stops another website from using a
       visitor's browser to open a socket; tokens travel in the first frame,
       never in the URL, so they are not in access logs either.
    """

    services: Services
    user: str
    session_id: str
    # Clustering only (else both stay ""): the routing key on the socket URL, and
    # the one the authenticated account is homed by (set before `joined`).
    route = ""
    home_route = ""
    # Whether a socket without a routing key may be served on an instance that does not
    # own it (its frames reach it through the owner). Support sockets may not: their
    # org's live state is on the owner, so they are told where to go (4012) instead.
    serve_keyless_anywhere = True
    # No Origin header: not a browser (browsers always send one), so nothing
    # a website could make a visitor's browser do.
    _origin_ok = True

    def initialize(self, services: Services) -> None:
        self.services = services
        self.user = ""
        self.session_id = ""
        self.queue = SendQueue(services.config.ws_queue_frames)
        # _OPEN until authenticated (_JOINED); _CLOSING from the first close on.
        # One attribute for both: see `_detach_stream` on why the count matters.
        self._state = _OPEN
        self._auth_timer: asyncio.TimerHandle | None = None
        self.keepalive_slot = 0
        self.keepalive_state = HEARD

    # --- hooks for subclasses -------------------------------------------------------------------

    def origin_ok(self, origin: str) -> bool:
        """Whether a page at ``origin`` may open this socket; by default this site's own pages
        and ``WHATSEASE_ALLOWED_ORIGINS``."""
        return origin_allowed(origin, self.request.host, self.services.config.allowed_origins)

    @abc.abstractmethod
    async def authenticate(self, message: str | bytes) -> None:
        """Handle the first frame: set ``user`` and ``session_id`` and join the hub.

        Raises `AppError` to refuse (close 4001), `Forbidden` for an origin the
        token's owner does not allow (close 4003), `ServiceUnavailable` when the
        database is unreachable (close 1013).
        """

    @abc.abstractmethod
    def receive(self, message: str | bytes) -> Awaitable[None] | None:
        """Handle one frame after authentication; an awaitable pauses reading until it is done."""

    def leave(self) -> None:
        """The socket is closing: leave the hub. Called at most once, only if authenticated."""

    def overflowed(self) -> None:
        """The send queue overflowed; the socket is about to close with 4008."""

    # --- Tornado's side ---------------------------------------------------------------------------

    def _detach_stream(self) -> tornado.iostream.IOStream:
        # Tornado's own version first sets seven of the handler's methods to
        # ones that raise (write, finish, ...): seven more attributes on every
        # socket. CPython shares an instance dict's keys with the class only
        # up to 29 attributes; past that each socket's handler carries a full
        # dict of its own (1,584 bytes at 40 keys, 296 at 29). Nothing here
        # writes HTTP on an upgraded socket.
        return self.detach()

    def get(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:
        route = self.get_query_argument(ROUTE_PARAM, "") or ""
        if route and not valid_route(route):
            # Refused in every mode, so a client's mistake shows before it matters.
            raise tornado.web.HTTPError(400, reason="route is not a routing key")
        cluster = self.services.cluster
        if cluster is not None and self._replay(cluster.replay_target):
            return _answered()
        # Tornado's coroutine runs the socket for its whole life: handed back,
        # not awaited inside one of ours, no second frame stays alive per socket.
        return super().get(*args, **kwargs)

    def _replay(self, target: Callable[..., str | None]) -> bool:
        """Answer, before upgrading, with ``fly-replay`` when another instance owns the URL's
        routing key (Fly's proxy then replays the upgrade there); True if answered."""
        route = self.get_query_argument(ROUTE_PARAM, "") or ""
        self.route = route if valid_route(route) else ""
        owner = target(self.route, replayed="fly-replay-src" in self.request.headers)
        if owner is None:
            return False
        self.set_status(307)
        self.set_header("fly-replay", f"instance={owner}")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"replay": owner, "detail": "this socket lives on another "
                                  "instance; the proxy replays the request there"}))
        return True

    def check_origin(self, origin: str) -> bool:
        self._origin_ok = self.origin_ok(origin)
        return True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer a plain HTTP request to a socket path (``POST /ws``, say) with problem+json,
        like the REST API; a 405 names the one method a socket answers."""
        error = AppError(self._reason)
        error.status, error.code, error.title = status_code, "http_error", self._reason
        if status_code == 405:
            self.set_header("Allow", "GET")
        self.set_header("Content-Type", "application/problem+json; charset=utf-8")
        self.finish(orjson.dumps(error.to_problem(instance=self.request.path)))

    # Frames up to TRANSPORT_MAX_FRAME_BYTES reach on_message so that those
    # over the protocol's 64 KiB get an error frame; larger ones are cut off
    # by Tornado with close 1009.
    @property
    def max_message_size(self) -> int:
        return TRANSPORT_MAX_FRAME_BYTES

    @property
    def ping_interval(self) -> float | None:
        # Tornado's own pinger (a task per socket) stays off: `open` hands
        # the socket to the application's keep-alive wheel instead.
        return 0

    def send_ping(self) -> None:
        """Write a keep-alive ping (called by the wheel); nothing if the socket is closing.

        Like `_flush`, straight to the kernel when nothing of the socket's
        waits to be written: Tornado's ``write_ping`` makes a future and
        schedules a write callback per ping.
        """
        conn = self.ws_connection
        if conn is None or conn.is_closing() or conn.stream is None:
            return
        rest = _to_kernel(conn.stream, _PING)
        if rest:
            with contextlib.suppress(StreamClosedError):
                conn.stream.write(rest)

    def on_pong(self, data: bytes) -> None:
        self.keepalive_state = HEARD

    def ping_timed_out(self) -> None:
        """The peer did not answer a ping in time (it is gone, or stuck): close."""
        self.close(None, REASON_PING_TIMEOUT)

    def get_compression_options(self) -> dict[str, Any] | None:
        # Frames are small; deflate would cost CPU and memory per socket.
        return None

    def open(self, *args: str, **kwargs: str) -> None:
        if not self._origin_ok:
            self.close(WS_4003_FORBIDDEN_ORIGIN, "origin not allowed")
            return
        if self.services.draining:
            self.close(WS_1012_SERVICE_RESTART, "server restarting")
            return
        self._auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_SECS, self.close, WS_4001_UNAUTHENTICATED, REASON_AUTH_TIMEOUT)
        wheel = keepalive_of(self.application)
        if wheel is not None:
            wheel.add(self)
        self._bound_kernel_buffer()
        self._steady_reads()
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

    def _steady_reads(self) -> None:
        stream = self.ws_connection.stream if self.ws_connection is not None else None
        if type(stream) is IOStream and not isinstance(stream.io_loop, SteadyReads):
            stream.io_loop = SteadyReads(stream.io_loop, stream)  # type: ignore[assignment]

    @property
    def authenticated(self) -> bool:
        """Whether the socket authenticated and joined, and has not begun to close."""
        return self._state == _JOINED

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        self.keepalive_state = HEARD  # the peer is there: no ping for a while
        if self._state == _CLOSING:
            return None
        if self._state == _OPEN:
            # Tornado reads nothing more until this returns: frames pipelined
            # behind auth wait for it.
            return self._authenticate(message)
        return self.receive(message)

    async def _authenticate(self, message: str | bytes) -> None:
        # The frame came in time: from here on a slow answer is the server's fault.
        self._cancel_auth_timer()
        try:
            await asyncio.wait_for(self.authenticate(message), AUTH_WORK_SECS)
            self._release_handshake()
        except Forbidden as exc:
            self.close(WS_4003_FORBIDDEN_ORIGIN, exc.detail[:120])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - close_for logs what is not the client's fault
            self.close_for(exc, WS_4001_UNAUTHENTICATED)

    def _release_handshake(self) -> None:
        """Empty the upgrade request's headers: nothing reads them after authentication.

        Tornado's handshake coroutine, the request and its HTTP/1 connection
        all keep that one object for the socket's whole life: ~2 KiB per
        socket from a bare client, several from a browser with cookies.
        """
        headers = self.request.headers
        for name in list(headers):
            del headers[name]

    def close_for(self, exc: Exception, client_fault: int) -> None:
        """Close because ``exc`` was raised: 1013 if the server cannot serve now, ``client_fault``
        for any other `AppError`, 1011 (logged) for a bug."""
        if is_unavailable(exc):
            self.try_again_later(exc)
        elif isinstance(exc, AppError):
            self.close(client_fault, exc.detail[:120])
        else:
            logger.error("socket of %s failed", self.user or "-", exc_info=exc)
            self.close(WS_1011_INTERNAL_ERROR, "internal error")

    def try_again_later(self, exc: BaseException) -> None:
        """Close with 1013: the server cannot serve now (``exc`` says why); clients reconnect."""
        logger.warning("closing a socket of %s with 1013: %s", self.user or "-", exc)
        self.close(WS_1013_TRY_AGAIN_LATER, REASON_TRY_AGAIN)

    def joined(self) -> bool:
        """Mark the socket authenticated; False if it closed meanwhile (then it must not join)."""
        if self._state == _CLOSING:
            return False
        if self.route and self.home_route and self.route != self.home_route:
            self.close(WS_4011_WRONG_ROUTE, REASON_WRONG_ROUTE)
            return False
        cluster = self.services.cluster
        if (cluster is not None and not self.route and self.home_route
                and not self.serve_keyless_anywhere and not cluster.is_mine(self.home_route)):
            self.close(WS_4012_MOVED, f"reconnect with ?route={self.home_route}")
            return False
        self._state = _JOINED
        return True

    def send_error_frame(self, code: str, detail: str, *, ref: str | None = None,
                   client_id: str | None = None,
                   errors: list[dict[str, str]] | None = None) -> None:
        """Answer a refused frame with an ``error`` frame naming the fault."""
        self.send_frame(error_frame(code, detail, ref=ref, client_id=client_id, errors=errors))

    def send_frame(self, data: bytes) -> None:
        """Queue an encoded frame; a socket over its queue bound is closed with 4008.

        The frame is written, with every other frame the socket is sent in
        this turn of the event loop, in one write when the turn ends: one
        system call and one future per socket and turn instead of a task, a
        future and a system call per frame (Tornado's ``write_message``).
        """
        if self._state == _CLOSING or self.ws_connection is None or self.ws_connection.is_closing():
            return
        queue = self.queue
        out = queue.turn
        if out is None:
            out = queue.turn = []
            asyncio.get_running_loop().call_soon(self._flush)
        out.append(data)
        self.sent(data)
        if queue.pending + len(out) > queue.limit:
            logger.warning("closing a socket of %s: %d frames unsent", self.user,
                           queue.pending + len(out))
            self.overflowed()
            self.close(WS_4008_TOO_SLOW, "too slow: send queue full")

    def _flush(self) -> None:
        """Write the frames queued in this turn of the loop, in order, as one write."""
        out, self.queue.turn = self.queue.turn, None
        conn = self.ws_connection
        if not out or conn is None or conn.is_closing() or conn.stream is None:
            return
        parts: list[bytes] = []
        for data in out:
            size = len(data)
            if size < 126:
                parts.append(bytes((_TEXT_FIN, size)))
            elif size <= 0xFFFF:
                parts.append(struct.pack("!BBH", _TEXT_FIN, 126, size))
            else:
                parts.append(struct.pack("!BBQ", _TEXT_FIN, 127, size))
            parts.append(data)
        payload = b"".join(parts)
        stream = conn.stream
        # Only what the kernel does not take now (its buffer is full: a slow
        # reader) goes through Tornado's write, and counts against the socket's
        # queue bound.
        payload = _to_kernel(stream, payload)
        if not payload:
            return
        try:
            future = stream.write(payload)
        except StreamClosedError:
            return
        self.queue.track(future, len(out))

    def sent(self, data: bytes) -> None:
        """A frame was queued (for metrics)."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close with ``code``; the socket leaves the hub at once, before the close handshake.

        Frames queued before the close are written before the close frame.
        """
        self._flush()
        self._finish()
        super().close(code, reason)

    def on_close(self) -> None:
        self.queue.turn = None  # the peer is gone: nothing queued can reach it
        self._finish()

    def _finish(self) -> None:
        if self._state == _CLOSING:
            return
        joined = self._state == _JOINED
        self._state = _CLOSING
        self._cancel_auth_timer()
        wheel = _KEEPALIVES.get(self.application)
        if wheel is not None:
            wheel.discard(self)
        if joined:
            self.leave()

    def _cancel_auth_timer(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} user={self.user or '-'}>"
