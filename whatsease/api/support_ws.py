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
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.openapi import WEBSOCKET_HEADERS, WEBSOCKET_RESPONSES
from whatsease.api.widget import org_origin_allowed
from whatsease.auth.ratelimit import TokenBucket
from whatsease.cluster.routing import org_route
from whatsease.delivery import frames
from whatsease.errors import AppError, Forbidden, invalid
from whatsease.realtime.protocol import auth_token, parse_fields
from whatsease.realtime.transport import Socket, is_unavailable
from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.storage.support_models import SupportConversation
from whatsease.support.service import (
    RESUME_MESSAGES,
    SupportService,
    console_key,
    customer_key,
    get_support,
)
from whatsease.timeutil import isoformat

logger = logging.getLogger(__name__)


class SupportSocket(Socket):
    """A support socket: frames checked against ``FIELDS``, a rate limit, errors answered."""

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {}
    serve_keyless_anywhere = False

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self.support: SupportService = get_support(services)
        self.bucket = TokenBucket(services.config.ws_send_rate, services.config.ws_send_burst)

    async def authenticate(self, message: str | bytes) -> None:
        await self.sign_in(auth_token(message))

    def receive(self, message: str | bytes) -> Awaitable[None]:
        return self._receive(message)

    async def _receive(self, message: str | bytes) -> None:
        ref: object = None
        client_id: object = None
        try:
            frame = parse_fields(message, self.FIELDS)
            ref = frame.get("ref")
            client_id = frame.get("client_id")
            if frame["type"] == "ping":
                self.send_frame(frames.pong(ref))
                return
            if not self.bucket.take():
                raise AppError("Too many frames; slow down.", code="rate_limited")
            await self.handle(frame)
        except AppError as exc:
            if is_unavailable(exc):
                self.try_again_later(exc)
                return
            self.send_error_frame(exc.code, exc.detail,
                            ref=ref[:64] if isinstance(ref, str) else None,
                            client_id=client_id[:64] if isinstance(client_id, str) else None,
                            errors=exc.errors)
        except Exception as exc:
            if is_unavailable(exc):
                self.try_again_later(exc)
                return
            logger.exception("support socket frame failed")
            self.send_error_frame("internal", "Something went wrong on our side.")

    @abc.abstractmethod
    async def sign_in(self, token: str) -> None:
        """Check the first frame's token, then call `joined` and join the hub; or raise."""

    @abc.abstractmethod
    async def handle(self, frame: dict[str, Any]) -> None:
        """Answer one valid frame after authentication."""

    async def left(self) -> None:
        """Leave the support service's state (called once when the socket closes)."""

    def leave(self) -> None:
        self.support.spawn(self.left(), "support-socket-detach")


class WidgetSocket(SupportSocket):
    """A customer's widget. Several sockets (tabs) on one session see the same conversation."""

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "send": ("client_id", "content"), "typing": ("state",), "ping": ()}

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self.conversation_id = ""

    def origin_ok(self, origin: str) -> bool:
        # The org, and with it the allowed origins, is known only from the token:
        # the check happens at authentication (close 4003).
        return True

    async def sign_in(self, token: str) -> None:
        conversation = await self.support.authenticate_customer(token)
        org = await self.support.orgs.get(conversation.org)
        origin = self.request.headers.get("Origin")
        if origin is not None and not org_origin_allowed(org, origin, self.request.host):
            raise Forbidden("origin not allowed for this organisation's widget")
        # Join the hub before reading the state: whatever happens meanwhile is
        # in ``ready`` or arrives after it (clients ignore frames before ready).
        self.conversation_id = conversation.conversation_id
        self.user = customer_key(self.conversation_id)
        self.session_id = self.conversation_id
        if self.services.cluster is not None:
            self.home_route = org_route(conversation.org)
        if not self.joined():
            return
        self.support.customer_connected(self)
        conversation, messages = await self.support.customer_view(conversation)
        self.send_frame(frames.widget_ready(
            conversation.to_customer_json(),
            [m.to_json(for_customer=True) for m in messages],
            more=len(messages) == RESUME_MESSAGES, config=org.widget_config(),
            server_time=isoformat(self.support.clock())))

    async def handle(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "send":
            client_id = validation.client_id(frame.get("client_id"))
            message = await self.support.customer_send(
                self.conversation_id, validation.content(frame.get("content")),
                client_id=client_id, origin=self)
            self.send_frame(frames.ack(client_id, message.to_json(for_customer=True)))
        elif frame["type"] == "typing":
            conversation = await self._conversation()
            if conversation is not None and conversation.active:
                await self.support.customer_typing(conversation, frame.get("state") is True)

    async def _conversation(self) -> SupportConversation | None:
        return await self.support.store.conversations.get(self.conversation_id)

    async def left(self) -> None:
        self.support.customer_disconnected(self)


class ConsoleSocket(SupportSocket):
    """An agent's console: live conversations of their org, loads, typing."""

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "send": ("conversation_id", "client_id", "content"),
        "typing": ("conversation_id", "state"), "read": ("conversation_id",), "ping": ()}

    def initialize(self, services: Services) -> None:
        super().initialize(services)
        self.agent: User | None = None

    async def sign_in(self, token: str) -> None:
        principal = await self.services.auth.authenticate(token)
        user = principal.user
        org = await self.support.member_org(user)
        self.agent = user
        self.user = console_key(user.email)
        self.session_id = principal.session_id
        if self.services.cluster is not None:
            self.home_route = org_route(org)
        if not self.joined():
            return
        await self.support.console_connected(self, user)
        snapshot = await self.support.console_snapshot(user)
        self.send_frame(frames.console_ready(
            {"email": user.email, "name": user.name, "role": user.role}, snapshot))

    async def handle(self, frame: dict[str, Any]) -> None:
        assert self.agent is not None
        conversation_id = frame.get("conversation_id")
        if not isinstance(conversation_id, str):
            raise invalid("conversation_id", "must be a conversation id")
        conversation_id = validation.object_id(conversation_id, "conversation_id")
        if frame["type"] == "send":
            client_id = validation.client_id(frame.get("client_id"))
            message = await self.support.agent_send(
                self.agent, conversation_id, validation.content(frame.get("content")),
                client_id=client_id, origin=self)
            self.send_frame(frames.ack(client_id, message.to_json(),
                                       conversation_id=conversation_id))
        elif frame["type"] == "typing":
            await self.support.agent_typing(self.agent, conversation_id,
                                            frame.get("state") is True)
        elif frame["type"] == "read":
            await self.support.mark_read(self.agent, conversation_id)

    async def left(self) -> None:
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
