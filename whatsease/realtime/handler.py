"""The messenger's WebSocket endpoint ``/ws``: the transport's hooks for chat frames."""

from __future__ import annotations

from collections.abc import Awaitable

from tornado.routing import URLSpec

from whatsease.api.openapi import WEBSOCKET_HEADERS, WEBSOCKET_RESPONSES
from whatsease.cluster.routing import user_route
from whatsease.errors import AppError
from whatsease.realtime.protocol import parse, peek_ref
from whatsease.realtime.service import ClientSession, Realtime, count_in, count_out
from whatsease.realtime.transport import Socket
from whatsease.services import Services


class SocketHandler(Socket):
    """One client's socket (``/ws``): frames are handed to its `ClientSession`."""

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        assert services.realtime is not None, "realtime.service is set up before routes"
        self.session: ClientSession | None = None

    @property
    def realtime(self) -> Realtime:
        # Not an attribute: a socket's __dict__ stays within the 29 keys CPython
        # shares between instances (transport.py, `_detach_stream`).
        realtime = self.services.realtime
        assert realtime is not None
        return realtime

    async def authenticate(self, message: str | bytes) -> None:
        count_in("auth")
        principal = await self.realtime.authenticate(parse(message))
        if self.services.cluster is not None:
            self.home_route = user_route(principal.email)
        if not self.joined():
            return
        self.user = principal.email
        self.session_id = principal.session_id
        self.session = self.realtime.attach(self)
        self.send_frame(self.session.ready_frame())
        for typing in self.session.typing_frames():
            self.send_frame(typing)

    def receive(self, message: str | bytes) -> Awaitable[None] | None:
        assert self.session is not None
        try:
            frame = parse(message)
        except AppError as exc:
            count_in("invalid")
            self.send_error_frame(exc.code, exc.detail, ref=peek_ref(message), errors=exc.errors)
            return None
        return self.session.receive(frame)

    def sent(self, data: bytes) -> None:
        count_out(data)

    def overflowed(self) -> None:
        if self.session is not None:
            self.session.overflowed()

    def leave(self) -> None:
        self.realtime.detach(self)
        if self.session is not None:
            self.session.release()
            self.session = None  # break the handler <-> session cycle


def routes(services: Services) -> list[URLSpec]:
    return [URLSpec(r"/ws$", SocketHandler, {"services": services}, name="/ws")]


OPENAPI: dict[str, dict[str, object]] = {
    "/ws": {"get": {
        "summary": "Open the real-time WebSocket",
        "description": (
            "Upgrade to a WebSocket (RFC 6455). JSON text frames, each with a `type`. "
            "The first frame must be `{\"type\":\"auth\",\"token\":ACCESS_TOKEN}` within "
            "5 s (never a token in the URL); the server answers `ready` or closes with "
            "4001. Client frames: send, delivered, read, typing, sync, ping. Server frames: "
            "ready, ack, message, status, typing, presence, synced, activity, pong, error. "
            "Close codes: 4001 unauthenticated, 4003 origin not allowed, 4008 too slow "
            "(send queue full), 4009 too many sockets (the user's oldest socket is closed), "
            "4029 rate-limited, 1012 server restarting, 1013 try again later (the database "
            "is unreachable); after 1012/1013 reconnect and sync. Frames over 64 KiB get an "
            "error frame; over 80 KiB the transport closes with 1009. See README.md, "
            "\"Real-time protocol\"."),
        "tags": ["real-time"],
        "security": [],
        "parameters": WEBSOCKET_HEADERS,
        "responses": WEBSOCKET_RESPONSES,
    }},
}
