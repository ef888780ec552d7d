"""Support's two WebSockets: ``/widget/ws`` for customers and ``/support/ws`` for agent consoles.

Both authenticate with the first frame, ``{"type": "auth", "token": ...}``, within
a few seconds; never with a token in the URL. The widget's token is the
customer's session token and its socket accepts the org's allowed origins (the
org is known once the token is); the console's token is an agent's access token
and its socket accepts only this server's origin and ``WHATSEASE_ALLOWED_ORIGINS``.

Frames, client → server:
  widget:  auth {token} · send {client_id, content} · typing {state} · ping
  console: auth {token} · send {conversation_id, client_id, content}
           · typing {conversation_id, state} · read {conversation_id} · ping
Server → client: ready, ack {client_id, message}, message, typing, session (the
customer's conversation changed or ended), conversation and agents (console
lists and loads), pong, and error {code, detail, client_id?}: a refused frame
(for example ``session_ended``) is always answered, never dropped.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any, ClassVar

import orjson
import tornado.websocket
from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.openapi import WEBSOCKET_HEADERS, WEBSOCKET_RESPONSES
from whatsease.api.widget import origin_allowed as widget_origin_allowed
from whatsease.auth.ratelimit import TokenBucket
from whatsease.errors import AppError, Forbidden
from whatsease.realtime.frames import (
    WS_1012_SERVICE_RESTART,
    WS_4001_UNAUTHENTICATED,
    WS_4003_FORBIDDEN_ORIGIN,
    WS_4008_TOO_SLOW,
    encode,
)
from whatsease.realtime.handler import OwnSiteSocket, write_http_error
from whatsease.realtime.service import SendQueue
from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.support.models import SupportConversation
from whatsease.support.service import (
    RESUME_MESSAGES,
    SupportService,
    customer_key,
    get_support,
)
from whatsease.timeutil import isoformat

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_SECS = 5.0
MAX_FRAME_BYTES = 64 * 1024
REASON_AUTH_TIMEOUT = "authenticate within 5 s: send {type: auth, token}"


class BadFrame(AppError):
    status, code, title = 400, "bad_frame", "Bad frame"


def parse_frame(raw: str | bytes, fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A JSON object with a known ``type`` and only that type's fields (plus ``ref``)."""
    if len(raw) > MAX_FRAME_BYTES:
        raise BadFrame(f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadFrame("A frame must be a JSON object.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise BadFrame("A frame must be a JSON object with a type.")
    allowed = fields.get(frame["type"])
    if allowed is None:
        raise BadFrame(f"Unknown frame type {frame['type'][:20]!r}; expected one of "
                       f"{', '.join(fields)}.")
    unknown = [k for k in frame if k not in allowed and k not in ("type", "ref")]
    if unknown:
        raise BadFrame(f"{frame['type']}: unknown field {unknown[0][:40]!r}.")
    return frame


class SupportSocket(tornado.websocket.WebSocketHandler, abc.ABC):
    """Shared transport: first-frame auth with a deadline, a bounded send queue, a rate limit.

    Implements the hub's ``Connection`` (``user``, ``session_id``, ``send_frame``, ``close``).
    """

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {}
    user: str
    session_id: str

    def initialize(self, services: Services) -> None:
        self.services = services
        self.support: SupportService = get_support(services)
        self.user = ""
        self.session_id = ""
        self.authenticated = False
        self.queue = SendQueue(services.config.ws_queue_frames)
        self.bucket = TokenBucket(services.config.ws_send_rate, services.config.ws_send_burst)
        self._closing = False
        self._auth_timer: asyncio.TimerHandle | None = None

    @property
    def max_message_size(self) -> int:
        return MAX_FRAME_BYTES + 1024

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        write_http_error(self, status_code)

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    def open(self, *args: str, **kwargs: str) -> None:
        if self.services.draining:
            self.close(WS_1012_SERVICE_RESTART, "server restarting")
            return
        self._auth_timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_SECS, self.close, WS_4001_UNAUTHENTICATED, REASON_AUTH_TIMEOUT)

    def on_message(self, message: str | bytes) -> Any:
        if self._closing:
            return None
        if not self.authenticated:
            return self._authenticate(message)
        return self._receive(message)

    async def _authenticate(self, message: str | bytes) -> None:
        try:
            frame = parse_frame(message, {"auth": ("token",)})
            token = frame.get("token")
            if not isinstance(token, str) or not token or len(token) > 4096:
                raise BadFrame("auth: token must be a non-empty string.")
            await self.authenticate(token)
        except Forbidden as exc:
            self.close(WS_4003_FORBIDDEN_ORIGIN, exc.detail[:120])
            return
        except AppError as exc:
            self.close(WS_4001_UNAUTHENTICATED, exc.detail[:120])
            return
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    async def _receive(self, message: str | bytes) -> None:
        ref: Any = None
        client_id: Any = None
        try:
            frame = parse_frame(message, self.FIELDS)
            ref = frame.get("ref")
            client_id = frame.get("client_id")
            if frame["type"] == "ping":
                self.send_frame(encode("pong", ref=ref))
                return
            if not self.bucket.take():
                raise AppError("Too many frames; slow down.", code="rate_limited")
            await self.handle(frame)
        except AppError as exc:
            error: dict[str, Any] = {"code": exc.code, "detail": exc.detail}
            if isinstance(ref, str):
                error["ref"] = ref[:64]
            if isinstance(client_id, str):
                error["client_id"] = client_id[:64]
            if exc.errors:
                error["errors"] = exc.errors
            self.send_frame(encode("error", **error))
        except Exception:
            logger.exception("support socket frame failed")
            self.send_frame(encode("error", code="internal",
                                   detail="Something went wrong on our side."))

    @abc.abstractmethod
    async def authenticate(self, token: str) -> None:
        """Check the first frame's token and set ``user``, or raise an `AppError`."""

    @abc.abstractmethod
    async def handle(self, frame: dict[str, Any]) -> None:
        """Answer one valid frame after authentication."""

    async def leave(self) -> None:
        """Leave the hub (called once when the socket closes)."""

    def send_frame(self, data: bytes) -> None:
        """Queue an encoded frame; a socket over its queue bound is closed with 4008."""
        if self._closing or self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            future = self.write_message(data)
        except tornado.websocket.WebSocketClosedError:
            return
        if not self.queue.track(future):
            self.close(WS_4008_TOO_SLOW, "too slow: send queue full")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self._closing:
            self._closing = True
            self._finish()
        super().close(code, reason)

    def on_close(self) -> None:
        if not self._closing:
            self._closing = True
            self._finish()

    def _finish(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        if self.authenticated:
            self.authenticated = False
            self.support.spawn(self.leave(), "support-socket-detach")


class WidgetSocket(SupportSocket):
    """A customer's widget. Several sockets (tabs) on one session see the same conversation."""

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "send": ("client_id", "content"), "typing": ("state",), "ping": ()}

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self.conversation_id = ""

    def check_origin(self, origin: str) -> bool:
        # The org, and with it the allowed origins, is known only from the token:
        # the check happens at authentication (close 4003).
        return True

    async def authenticate(self, token: str) -> None:
        conversation = await self.support.authenticate_customer(token)
        org = await self.support.orgs.get(conversation.org)
        origin = self.request.headers.get("Origin")
        own = f"{self.request.protocol}://{self.request.host}"
        if origin is not None and not widget_origin_allowed(org, origin, own):
            raise Forbidden("origin not allowed for this organisation's widget")
        if self._closing:
            return
        # Join the hub before reading the state: whatever happens meanwhile is
        # in ``ready`` or arrives after it (clients ignore frames before ready).
        self.conversation_id = conversation.conversation_id
        self.user = customer_key(self.conversation_id)
        self.session_id = self.conversation_id
        self.support.customer_connected(self)
        self.authenticated = True
        conversation, messages = await self.support.customer_view(conversation)
        self.send_frame(encode(
            "ready", session=conversation.to_customer_json(),
            messages=[m.to_json(for_customer=True) for m in messages],
            more=len(messages) == RESUME_MESSAGES, config=org.widget_config(),
            server_time=isoformat(self.support.clock())))

    async def handle(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "send":
            client_id = validation.client_id(frame.get("client_id"))
            message = await self.support.customer_send(
                self.conversation_id, validation.content(frame.get("content")),
                client_id=client_id, origin=self)
            self.send_frame(encode("ack", client_id=client_id,
                                   message=message.to_json(for_customer=True)))
        elif frame["type"] == "typing":
            conversation = await self._conversation()
            if conversation is not None and conversation.active:
                await self.support.customer_typing(conversation, frame.get("state") is True)

    async def _conversation(self) -> SupportConversation | None:
        return await self.support.store.conversations.get(self.conversation_id)

    async def leave(self) -> None:
        self.support.customer_disconnected(self)


class ConsoleSocket(OwnSiteSocket, SupportSocket):
    """An agent's console: live conversations of their org, loads, typing."""

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "send": ("conversation_id", "client_id", "content"),
        "typing": ("conversation_id", "state"), "read": ("conversation_id",), "ping": ()}

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self.agent: User | None = None

    def open(self, *args: str, **kwargs: str) -> None:
        if self.refused_origin():
            return
        super().open(*args, **kwargs)

    async def authenticate(self, token: str) -> None:
        principal = await self.services.auth.authenticate(token)
        user = principal.user
        await self.support.member_org(user)
        if self._closing:
            return
        self.agent = user
        self.user = user.email
        self.session_id = principal.session_id
        self.authenticated = True
        await self.support.console_connected(self, user)
        snapshot = await self.support.console_snapshot(user)
        self.send_frame(encode("ready", me={"email": user.email, "name": user.name,
                                            "role": user.role}, **snapshot))

    async def handle(self, frame: dict[str, Any]) -> None:
        assert self.agent is not None
        conversation_id = frame.get("conversation_id")
        if not isinstance(conversation_id, str):
            raise validation.invalid("conversation_id", "must be a conversation id")
        conversation_id = validation.object_id(conversation_id, "conversation_id")
        if frame["type"] == "send":
            client_id = validation.client_id(frame.get("client_id"))
            message = await self.support.agent_send(
                self.agent, conversation_id, validation.content(frame.get("content")),
                client_id=client_id, origin=self)
            self.send_frame(encode("ack", client_id=client_id, conversation_id=conversation_id,
                                   message=message.to_json()))
        elif frame["type"] == "typing":
            await self.support.agent_typing(self.agent, conversation_id,
                                            frame.get("state") is True)
        elif frame["type"] == "read":
            await self.support.mark_read(self.agent, conversation_id)

    async def leave(self) -> None:
        if self.agent is not None:
            await self.support.console_disconnected(self, self.agent)


def routes(services: Services) -> list[URLSpec]:
    return [
        URLSpec(r"/widget/ws$", WidgetSocket, {"services": services}, name="/widget/ws"),
        URLSpec(r"/support/ws$", ConsoleSocket, {"services": services}, name="/support/ws"),
    ]


OPENAPI: dict[str, dict[str, Any]] = {
    "/widget/ws": {"get": {
        "summary": "The chat widget's WebSocket (customers)",
        "description": (
            "First frame `{\"type\":\"auth\",\"token\":SESSION_TOKEN}` (the widget session "
            "token) within 5 s; the server answers `ready {session, messages, config}` or "
            "closes with 4001 (bad token) or 4003 (the page's origin is not one of the "
            "org's allowed origins). Client frames: send {client_id, content}, typing "
            "{state}, ping. Server frames: ack, message, typing, session, pong, error "
            "(code session_ended once the conversation has ended). See docs/support.md."),
        "tags": ["widget"], "security": [], "parameters": WEBSOCKET_HEADERS,
        "responses": WEBSOCKET_RESPONSES}},
    "/support/ws": {"get": {
        "summary": "The agent console's WebSocket",
        "description": (
            "First frame `{\"type\":\"auth\",\"token\":ACCESS_TOKEN}` of an agent or org "
            "admin within 5 s; `ready {me, org, admin, conversations, agents}` or close "
            "4001/4003. Client frames: send {conversation_id, client_id, content}, typing "
            "{conversation_id, state}, read {conversation_id}, ping. Server frames: ack, "
            "message, typing, conversation, agents, pong, error. See docs/support.md."),
        "tags": ["support"], "security": [], "parameters": WEBSOCKET_HEADERS,
        "responses": WEBSOCKET_RESPONSES}},
}
