"""The widget's public API under /widget/v1/{key}/ with CORS for the org's sites, and /widget.js.

Only these routes answer cross-origin requests, and only from origins the org
lists in ``allowed_origins`` (or the server's own): the rest of the API sends
no CORS headers, so browsers keep other sites out of it. A customer is
identified by the secret session token the widget keeps in the host page's
localStorage, sent as ``Authorization: Bearer``; it opens that one conversation
and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api import shell
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import (
    CLIENT_ID_SCHEMA,
    CURSOR,
    EMAIL_422,
    LIST,
    OBJECT,
    content_schema,
    cursor,
    email_schema,
    limit,
    name_schema,
    problem,
    shape,
    unprocessable,
)
from whatsease.cluster.routing import org_route
from whatsease.errors import Forbidden, NotFound, Unauthorized
from whatsease.realtime.transport import origin_allowed
from whatsease.services import Services
from whatsease.storage.support_models import Org, SupportConversation
from whatsease.support.service import RESUME_MESSAGES, SupportService, get_support

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
# Browsers may cache a preflight answer this long, in seconds.
PREFLIGHT_MAX_AGE_SECS = 600
# The embed script is fetched on every page view of the host site: let browsers
# and CDNs keep it briefly, and revalidate after.
WIDGET_SCRIPT_MAX_AGE_SECS = 300
MAX_KEY_CHARS = 100


def org_origin_allowed(org: Org, origin: str, host: str) -> bool:
    """Whether a page at ``origin`` may use the org's widget (its sites, or this server)."""
    return origin_allowed(origin, host, org.settings.allowed_origins)


class WidgetHandler(BaseHandler):
    """Base of the widget API: the org from the key in the path, CORS, the customer's token."""

    _cors_origin: str | None = None

    @property
    def support(self) -> SupportService:
        return get_support(self.services)

    def route_of(self, org: Org) -> dict[str, str]:
        """``{"route": ...}`` for the widget's socket URL when clustering is on, else nothing."""
        return {"route": org_route(org.org_id)} if self.services.cluster is not None else {}

    async def open_org(self, key: str) -> Org:
        """The org of ``key``; 404 if unknown, 403 if the calling site is not allowed.

        Sets the CORS headers for an allowed cross-origin caller.
        """
        self.set_header("Vary", "Origin")
        if len(key) > MAX_KEY_CHARS:
            raise NotFound("No organisation has this widget key.")
        org = await self.support.orgs.by_key(key)
        if self.services.cluster is not None and self.request.method != "OPTIONS":
            # The org's live state (sessions, agents online, routing) is on its owner.
            self.replay_to_owner(org_route(org.org_id))
        origin = self.request.headers.get("Origin")
        if origin is not None:
            if not org_origin_allowed(org, origin, self.request.host):
                raise Forbidden("This site is not allowed to use this organisation's chat "
                                "widget; an admin can add its origin to the allowed origins.",
                                code="origin_not_allowed")
            self._cors_origin = origin
            self._set_cors()
        return org

    def _set_cors(self) -> None:
        if self._cors_origin is not None:
            self.set_header("Access-Control-Allow-Origin", self._cors_origin)
            self.set_header("Access-Control-Expose-Headers", "Location, Retry-After")
            self.set_header("Vary", "Origin")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # send_error() clears the headers; an allowed site must still read the problem.
        self._set_cors()
        super().write_error(status_code, **kwargs)

    async def customer(self, org: Org) -> SupportConversation:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the session token: Authorization: Bearer <token>.",
                               code="missing_token")
        return await self.support.authenticate_customer(token.strip(), org.org_id)

    async def options(self, key: str) -> None:
        """A CORS preflight: which methods and headers an allowed site may use."""
        await self.open_org(key)
        self.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECS))
        self.no_content()


class WidgetConfigHandler(WidgetHandler):
    async def get(self, key: str) -> None:
        org = await self.open_org(key)
        self.write_json({"config": org.widget_config(), **self.route_of(org)})


class WidgetSessionsHandler(WidgetHandler):
    async def post(self, key: str) -> None:
        org = await self.open_org(key)
        body = self.json_body()
        validation.check_fields(body, required=("name", "email"))
        name = validation.name(body["name"])
        email = validation.email(body["email"])
        conversation, token, messages = await self.support.start_session(
            org, name, email, ip=self.client_ip())
        self.created({"session": conversation.to_customer_json(), "token": token,
                      "messages": [m.to_json(for_customer=True) for m in messages],
                      "config": org.widget_config(), **self.route_of(org)},
                     f"/widget/v1/{key}/session")


class WidgetSessionHandler(WidgetHandler):
    async def get(self, key: str) -> None:
        org = await self.open_org(key)
        conversation, messages = await self.support.customer_view(await self.customer(org))
        self.write_json({"session": conversation.to_customer_json(),
                         "messages": [m.to_json(for_customer=True) for m in messages],
                         "more": len(messages) == RESUME_MESSAGES,
                         "config": org.widget_config(), **self.route_of(org)})

    async def delete(self, key: str) -> None:
        org = await self.open_org(key)
        await self.support.customer_end(await self.customer(org))
        self.no_content()


class WidgetMessagesHandler(WidgetHandler):
    async def get(self, key: str) -> None:
        org = await self.open_org(key)
        conversation = await self.customer(org)
        before = self.get_query_argument("before", None)
        before = validation.object_id(before, "before") if before else None
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=100)
        messages = await self.support.history(conversation.conversation_id, before=before,
                                              limit=limit)
        self.write_json({"messages": [m.to_json(for_customer=True) for m in messages],
                         "next_before": messages[-1].message_id if len(messages) == limit
                         else None})

    async def post(self, key: str) -> None:
        org = await self.open_org(key)
        conversation = await self.customer(org)
        body = self.json_body()
        validation.check_fields(body, required=("content",), optional=("client_id",))
        message = await self.support.customer_send(
            conversation.conversation_id, validation.content(body["content"]),
            client_id=validation.client_id(body.get("client_id")))
        self.created({"message": message.to_json(for_customer=True)},
                     f"/widget/v1/{key}/session/messages")


class WidgetScriptHandler(BaseHandler):
    """``/widget.js``: the embeddable script, loadable from any site."""

    def get(self) -> None:
        try:
            body = shell.widget_bundle(STATIC_DIR)
        except OSError:
            raise NotFound("The widget script is not installed.") from None
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", f"public, max-age={WIDGET_SCRIPT_MAX_AGE_SECS}")
        # Host pages that isolate themselves (COEP) may still load it.
        self.set_header("Cross-Origin-Resource-Policy", "cross-origin")
        self.finish(body)


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/widget.js", WidgetScriptHandler, services),
        route("/widget/v1/{key}/config", WidgetConfigHandler, services),
        route("/widget/v1/{key}/sessions", WidgetSessionsHandler, services),
        route("/widget/v1/{key}/session", WidgetSessionHandler, services),
        route("/widget/v1/{key}/session/messages", WidgetMessagesHandler, services),
    ]


_KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The org's public widget key"}]
# The bearer here is the widget session token, not an access token.
_WIDGET_AUTH: list[dict[str, list[str]]] = [{"widgetSession": []}]
_ORIGIN = {"403": problem("Forbidden")}
_PREFLIGHT = {"summary": "CORS preflight for the org's allowed sites", "tags": ["widget"],
              "security": [], "parameters": _KEY,
              "responses": {"204": {"description": "Allowed"}, **_ORIGIN}}
_NEW_MESSAGE = {"type": "object", "required": ["content"], "additionalProperties": False,
                "properties": {"content": content_schema(), "client_id": CLIENT_ID_SCHEMA}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/widget.js": {"get": {
        "summary": "The embeddable chat widget script", "tags": ["widget"], "security": [],
        "responses": {"200": {"description": "JavaScript", "content": {
            "text/javascript": {"schema": {"type": "string"}}}},
            "404": problem("NotFound")}}},
    "/widget/v1/{key}/config": {
        "get": {"summary": "The widget's public look and greeting", "tags": ["widget"],
                "security": [], "parameters": _KEY,
                "responses": {"200": {"description": "Config", "content": shape(config=OBJECT)},
                              **_ORIGIN}},
        "options": _PREFLIGHT},
    "/widget/v1/{key}/sessions": {
        "post": {"summary": "Start a conversation: name and email in, a session token out",
                 "tags": ["widget"], "security": [], "parameters": _KEY,
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["name", "email"],
                                "additionalProperties": False,
                                "properties": {"name": name_schema(),
                                               "email": email_schema()}}}}},
                 "responses": {"201": {"description": "Started", "content": shape(
                     session=OBJECT, token={"type": "string"}, messages=LIST, config=OBJECT)},
                               "422": unprocessable(EMAIL_422),
                               "429": problem("TooManyRequests"), **_ORIGIN}},
        "options": _PREFLIGHT},
    "/widget/v1/{key}/session": {
        "get": {"summary": "Resume: the session (active or ended) and its latest messages",
                "tags": ["widget"], "security": _WIDGET_AUTH, "parameters": _KEY,
                "responses": {"200": {"description": "Session", "content": shape(
                    session=OBJECT, messages=LIST, more={"type": "boolean"}, config=OBJECT)},
                    **_ORIGIN}},
        "delete": {"summary": "The customer ends the conversation", "tags": ["widget"],
                   "security": _WIDGET_AUTH, "parameters": _KEY,
                   "responses": {"204": {"description": "Ended"}, **_ORIGIN}},
        "options": _PREFLIGHT},
    "/widget/v1/{key}/session/messages": {
        "get": {"summary": "The conversation's history, newest first", "tags": ["widget"],
                "security": _WIDGET_AUTH, "parameters": [*_KEY, cursor(), limit(100, 50)],
                "responses": {"200": {"description": "Messages", "content": shape(
                    messages=LIST, next_before=CURSOR)}, **_ORIGIN}},
        "post": {"summary": "Send a message (410 session_ended once the session has ended)",
                 "tags": ["widget"], "security": _WIDGET_AUTH, "parameters": _KEY,
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": _NEW_MESSAGE}}},
                 "responses": {"201": {"description": "Stored", "content": shape(message=OBJECT)},
                               "410": problem("Gone"), "429": problem("TooManyRequests"),
                               **_ORIGIN}},
        "options": _PREFLIGHT},
}
