"""REST for customer support: orgs and agents (admins), the agent console's API, and /agent.

Every route needs an access token. Agents and admins see only their own org's
conversations; anything else answers 404 as if it did not exist.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import (
    CLIENT_ID_SCHEMA,
    CURSOR,
    EMAIL_422,
    LIST,
    OBJECT,
    WHITESPACE,
    content_schema,
    cursor,
    email_schema,
    limit,
    name_schema,
    problem,
    shape,
    unprocessable,
)
from whatsease.api.pages import ModulePage
from whatsease.auth.service import Principal
from whatsease.channels.addresses import contact_address, is_contact_address
from whatsease.cluster.routing import org_route
from whatsease.errors import Forbidden, NotFound, invalid
from whatsease.services import Services
from whatsease.storage.models import is_object_id
from whatsease.storage.support_models import AGENT_ROLES, CHATBOT_KINDS, ROUTINGS
from whatsease.support.assignment import STRATEGIES
from whatsease.support.orgs import (
    MAX_CATALOGUE_CHARS,
    MAX_GREETING_CHARS,
    MAX_MODEL_CHARS,
    MAX_ORG_NAME_CHARS,
    MAX_ORIGIN_CHARS,
    MAX_ORIGINS,
    MAX_SESSION_TIMEOUT_SECS,
    MAX_TOKEN_CHARS,
    MAX_URL_CHARS,
    MIN_SESSION_TIMEOUT_SECS,
    is_org_admin,
    is_platform_admin,
)
from whatsease.support.service import RESUME_MESSAGES, SupportService, get_support

CONSOLE_DIR = "agent"
SCOPES = ("mine", "queued", "bot", "active", "ended")


class SupportHandler(BaseHandler):
    @property
    def support(self) -> SupportService:
        return get_support(self.services)

    async def authenticate(self) -> Principal:
        principal = await super().authenticate()
        if principal.user.org and self.services.cluster is not None:
            # The org's live state (agents online, assignment) is on its owner.
            self.replay_to_owner(org_route(principal.user.org))
        return principal


def _conversation_id(value: str) -> str:
    # An id that cannot exist is simply not found, like another org's.
    if not is_object_id(value):
        raise NotFound("No such conversation.")
    return value.lower()


class OrgsHandler(SupportHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        orgs = await self.support.orgs.list_for(principal.user)
        self.write_json({"orgs": [o.to_json(settings=is_org_admin(principal.user, o.org_id))
                                  for o in orgs]})

    async def post(self) -> None:
        principal = await self.authenticate()
        if not is_platform_admin(principal.user):
            raise Forbidden("Only platform admins create organisations.")
        body = self.json_body()
        validation.check_fields(body, required=("name",), optional=("id", "settings", "admin"))
        settings = body.get("settings")
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise invalid("settings", "must be an object")
        org, admin = await self.support.orgs.create_with_admin(
            body["name"], org_id=body.get("id"), settings=settings, admin=body.get("admin"))
        if admin is not None:
            self.support.member_changed(org.org_id, admin.email)
        self.created({"org": org.to_json()}, f"/api/v1/orgs/{org.org_id}")


class OrgHandler(SupportHandler):
    async def get(self, org_id: str) -> None:
        principal = await self.authenticate()
        org = await self.support.orgs.visible(principal.user, org_id)
        self.write_json({"org": org.to_json(settings=is_org_admin(principal.user, org_id))})

    async def patch(self, org_id: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.administered(principal.user, org_id)
        body = self.json_body()
        validation.check_fields(body, optional=("name", "settings"))
        if "name" in body:
            await self.support.orgs.rename(org_id, body["name"])
        if "settings" in body:
            if not isinstance(body["settings"], dict):
                raise invalid("settings", "must be an object")
            await self.support.orgs.update_settings(org_id, body["settings"])
        org = await self.support.orgs.get(org_id)
        self.write_json({"org": org.to_json()})

    async def delete(self, org_id: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.visible(principal.user, org_id)
        if not is_platform_admin(principal.user):
            raise Forbidden("Only platform admins delete organisations.")
        for email in await self.support.orgs.delete(org_id):
            await self.support.member_removed(org_id, email)
        self.no_content()


class OrgKeyHandler(SupportHandler):
    async def post(self, org_id: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.administered(principal.user, org_id)
        org = await self.support.orgs.rotate_key(org_id)
        self.write_json({"org": org.to_json()})


class OrgAgentsHandler(SupportHandler):
    async def get(self, org_id: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.visible(principal.user, org_id)
        self.write_json({"agents": await self.support.agents_view(org_id)})

    async def post(self, org_id: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.administered(principal.user, org_id)
        body = self.json_body()
        validation.check_fields(body, required=("email",), optional=("role",))
        user = await self.support.orgs.add_member(org_id, body["email"],
                                                  body.get("role", "agent"))
        self.support.member_changed(org_id, user.email)
        self.created({"agent": {"email": user.email, "name": user.name, "role": user.role}},
                     f"/api/v1/orgs/{org_id}/agents/{urllib.parse.quote(user.email)}")


class OrgAgentHandler(SupportHandler):
    async def delete(self, org_id: str, email: str) -> None:
        principal = await self.authenticate()
        await self.support.orgs.administered(principal.user, org_id)
        address = validation.email(urllib.parse.unquote(email))
        await self.support.orgs.remove_member(org_id, address)
        await self.support.member_removed(org_id, address)
        self.no_content()


def _customer(value: str) -> str:
    """A customer's address: a widget customer's email or a channel contact (``wa:+49…``)."""
    if is_contact_address(value.strip()):
        return contact_address(value, "customer")
    return validation.email(value, "customer")


class ConversationsHandler(SupportHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        scope = self.get_query_argument("scope", "mine")
        if scope not in SCOPES:
            raise invalid("scope", f"must be one of {', '.join(SCOPES)}")
        customer = self.get_query_argument("customer", None)
        before = self.get_query_argument("before", None)
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=200)
        conversations = await self.support.list_conversations(
            principal.user, scope=scope,
            customer=_customer(customer) if customer else None,
            before=validation.object_id(before, "before") if before else None, limit=limit)
        self.write_json({
            "conversations": [c.to_agent_json() for c in conversations],
            "next_before": (conversations[-1].conversation_id
                            if len(conversations) == limit else None)})


class ConversationHandler(SupportHandler):
    async def get(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.conversation_for(principal.user,
                                                           _conversation_id(conversation_id))
        messages = await self.support.history(conversation.conversation_id, before=None,
                                              limit=RESUME_MESSAGES)
        self.write_json({"conversation": conversation.to_agent_json(),
                         "messages": [m.to_json() for m in reversed(messages)],
                         "more": len(messages) == RESUME_MESSAGES})


class ConversationMessagesHandler(SupportHandler):
    async def get(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.conversation_for(principal.user,
                                                           _conversation_id(conversation_id))
        before = self.get_query_argument("before", None)
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=100)
        messages = await self.support.history(
            conversation.conversation_id,
            before=validation.object_id(before, "before") if before else None, limit=limit)
        self.write_json({"messages": [m.to_json() for m in messages],
                         "next_before": messages[-1].message_id if len(messages) == limit
                         else None})

    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("content",), optional=("client_id",))
        cid = _conversation_id(conversation_id)
        message = await self.support.agent_send(
            principal.user, cid, validation.content(body["content"]),
            client_id=validation.client_id(body.get("client_id")))
        self.created({"message": message.to_json()},
                     f"/api/v1/support/conversations/{cid}/messages")


class TakeOverHandler(SupportHandler):
    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.take_over(principal.user,
                                                    _conversation_id(conversation_id))
        self.write_json({"conversation": conversation.to_agent_json()})


class HandBackHandler(SupportHandler):
    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.hand_back(principal.user,
                                                    _conversation_id(conversation_id))
        self.write_json({"conversation": conversation.to_agent_json()})


class TransferHandler(SupportHandler):
    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("agent",))
        conversation = await self.support.transfer(
            principal.user, _conversation_id(conversation_id),
            validation.email(body["agent"], "agent"))
        self.write_json({"conversation": conversation.to_agent_json()})


class CloseHandler(SupportHandler):
    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.close(principal.user,
                                                _conversation_id(conversation_id))
        self.write_json({"conversation": conversation.to_agent_json()})


class ReadHandler(SupportHandler):
    async def post(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        conversation = await self.support.mark_read(principal.user,
                                                    _conversation_id(conversation_id))
        self.write_json({"conversation": conversation.to_agent_json()})


class DashboardHandler(SupportHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        self.write_json(await self.support.dashboard(principal.user))


class SupportAgentsHandler(SupportHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        org_id = await self.support.member_org(principal.user)
        self.write_json({"agents": await self.support.agents_view(org_id)})


class AgentConsoleHandler(ModulePage):
    """``/agent``: the agent console's page (its own login; the API does the rest)."""

    PAGE = f"{CONSOLE_DIR}/index.html"
    MODULE_DIRS = (CONSOLE_DIR, "shared")
    TITLE = "agent console"


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/orgs", OrgsHandler, services),
        route("/api/v1/orgs/{org_id}", OrgHandler, services),
        route("/api/v1/orgs/{org_id}/widget-key", OrgKeyHandler, services),
        route("/api/v1/orgs/{org_id}/agents", OrgAgentsHandler, services),
        route("/api/v1/orgs/{org_id}/agents/{email}", OrgAgentHandler, services),
        route("/api/v1/support/conversations", ConversationsHandler, services),
        route("/api/v1/support/conversations/{conversation_id}", ConversationHandler,
              services),
        route("/api/v1/support/conversations/{conversation_id}/messages",
              ConversationMessagesHandler, services),
        route("/api/v1/support/conversations/{conversation_id}/takeover", TakeOverHandler,
              services),
        route("/api/v1/support/conversations/{conversation_id}/handback", HandBackHandler,
              services),
        route("/api/v1/support/conversations/{conversation_id}/transfer", TransferHandler,
              services),
        route("/api/v1/support/conversations/{conversation_id}/close", CloseHandler,
              services),
        route("/api/v1/support/conversations/{conversation_id}/read", ReadHandler, services),
        route("/api/v1/support/dashboard", DashboardHandler, services),
        route("/api/v1/support/agents", SupportAgentsHandler, services),
        URLSpec(r"/agent(?:/.*)?$", AgentConsoleHandler,
                {"services": services, "route": "/agent"}, name="/agent"),
    ]


_OBJ = {"application/json": {"schema": {"type": "object"}}}
_ORG = [{"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_CID = [{"name": "conversation_id", "in": "path", "required": True,
         "schema": {"type": "string"},
         "description": "24 hexadecimal characters; anything else is simply not found"}]
_ERRORS = {"403": problem("Forbidden"), "404": problem("NotFound")}
# The settings' rules no schema can state (the 422 of creating and changing an org).
_SETTINGS_RULES = ("settings.chatbot.catalogue must be a valid TOML intent catalogue (the "
                   "message says what is wrong). settings.chatbot.url must pass the outbound "
                   "guard: https (unless the operator allows http and local addresses for "
                   "development), a valid host name, and no loopback, private, link-local, "
                   "shared, multicast, reserved or metadata address, as written or as the "
                   "name resolves now (checked again on every call).")
_ORIGIN = {"type": "string", "maxLength": MAX_ORIGIN_CHARS,
           "pattern": "^(\\*|[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/*)$"}
_SETTINGS = {"type": "object", "additionalProperties": False, "properties": {
    "routing": {"enum": list(ROUTINGS)},
    "assignment": {"enum": list(STRATEGIES)},
    "chatbot": {"type": "object", "additionalProperties": False,
                "description": "kind external needs a url",
                "if": {"required": ["kind"], "properties": {"kind": {"const": "external"}}},
                "then": {"required": ["url"],
                         "properties": {"url": {"type": "string", "minLength": 1}}},
                "properties": {
                    "kind": {"enum": list(CHATBOT_KINDS)},
                    "catalogue": {"type": ["string", "null"], "maxLength": MAX_CATALOGUE_CHARS,
                                  "description": "TOML intent catalogue"},
                    "url": {"type": ["string", "null"], "maxLength": MAX_URL_CHARS,
                            "pattern": f"^(https?://[^{WHITESPACE}]+)?$"},
                    "model": {"type": ["string", "null"], "maxLength": MAX_MODEL_CHARS},
                    "token": {"type": ["string", "null"], "maxLength": MAX_TOKEN_CHARS,
                              "pattern": "^[^\\r\\n]*$",
                              "description": "write-only; shown as token_set and token_hint"}}},
    "session_timeout": {"type": "integer", "minimum": MIN_SESSION_TIMEOUT_SECS,
                        "maximum": MAX_SESSION_TIMEOUT_SECS},
    "greeting": {"type": "string", "maxLength": MAX_GREETING_CHARS},
    "brand_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "allowed_origins": {"type": "array", "maxItems": MAX_ORIGINS, "items": _ORIGIN}}}
_ORG_ID_SCHEMA = {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _action(summary: str, body: dict[str, Any] | None = None,
            *rules: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary, "tags": ["support"], "parameters": _CID,
        "responses": {"200": {"description": "The conversation",
                              "content": shape(conversation=OBJECT)},
                      "409": problem("Conflict"), "410": problem("Gone"), **_ERRORS}}
    if body is not None:
        operation["requestBody"] = _body(body)
        operation["responses"]["422"] = unprocessable(*rules)
    return {"post": operation}


OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/orgs": {
        "get": {"summary": "Organisations I may see", "tags": ["support"],
                "responses": {"200": {"description": "Orgs", "content": shape(orgs=LIST)},
                              **_ERRORS}},
        "post": {"summary": "Create an organisation (platform admins)", "tags": ["support"],
                 "requestBody": _body({
                     "type": "object", "required": ["name"], "additionalProperties": False,
                     "properties": {
                         "name": name_schema(MAX_ORG_NAME_CHARS),
                         "id": {**_ORG_ID_SCHEMA, "type": ["string", "null"]},
                         "admin": {"anyOf": [email_schema(), {"type": "null"}]},
                         "settings": {**_SETTINGS, "type": ["object", "null"]}}}),
                 "responses": {"201": {"description": "Created", "content": shape(org=OBJECT)},
                               "409": problem("Conflict"),
                               "422": unprocessable(EMAIL_422, _SETTINGS_RULES), **_ERRORS}}},
    "/api/v1/orgs/{org_id}": {
        "get": {"summary": "One organisation (settings for its admins)", "tags": ["support"],
                "parameters": _ORG,
                "responses": {"200": {"description": "Org", "content": shape(org=OBJECT)},
                              **_ERRORS}},
        "patch": {"summary": "Rename or change settings (org admins)", "tags": ["support"],
                  "parameters": _ORG,
                  "requestBody": _body({"type": "object", "additionalProperties": False,
                                        "properties": {"name": name_schema(),
                                                       "settings": _SETTINGS}}),
                  "responses": {"200": {"description": "Org", "content": shape(org=OBJECT)},
                                "422": unprocessable(_SETTINGS_RULES), **_ERRORS}},
        "delete": {"summary": "Delete an organisation and its conversations (platform admins)",
                   "tags": ["support"], "parameters": _ORG,
                   "responses": {"204": {"description": "Deleted"}, **_ERRORS}}},
    "/api/v1/orgs/{org_id}/widget-key": {"post": {
        "summary": "Issue a new widget key (the old embed snippet stops working)",
        "tags": ["support"], "parameters": _ORG,
        "responses": {"200": {"description": "Org", "content": shape(org=OBJECT)}, **_ERRORS}}},
    "/api/v1/orgs/{org_id}/agents": {
        "get": {"summary": "The org's agents with online state, load and first-response times",
                "tags": ["support"], "parameters": _ORG,
                "responses": {"200": {"description": "Agents", "content": shape(agents=LIST)},
                              **_ERRORS}},
        "post": {"summary": "Make a registered account an agent or admin of the org",
                 "tags": ["support"], "parameters": _ORG,
                 "requestBody": _body({"type": "object", "required": ["email"],
                                       "additionalProperties": False, "properties": {
                                           "email": email_schema(),
                                           "role": {"enum": list(AGENT_ROLES)}}}),
                 "responses": {"201": {"description": "Added", "content": shape(agent=OBJECT)},
                               "409": problem("Conflict"),
                               "422": unprocessable(EMAIL_422), **_ERRORS}}},
    "/api/v1/orgs/{org_id}/agents/{email}": {"delete": {
        "summary": "Remove an agent from the org", "tags": ["support"],
        "parameters": [*_ORG, {"name": "email", "in": "path", "required": True,
                              "schema": email_schema()}],
        "responses": {"204": {"description": "Removed"}, "422": unprocessable(EMAIL_422),
                      **_ERRORS}}},
    "/api/v1/support/conversations": {"get": {
        "summary": "Console lists: mine, queued, bot, active (admins), ended; or ?customer=",
        "tags": ["support"], "parameters": [
            {"name": "scope", "in": "query", "schema": {"enum": list(SCOPES)}},
            {"name": "customer", "in": "query", "description": "Empty is the same as absent",
             "schema": {"anyOf": [email_schema(), {"const": ""}]}},
            cursor(), limit(200, 50)],
        "responses": {"200": {"description": "Conversations", "content": shape(
            conversations=LIST, next_before=CURSOR)},
            "422": unprocessable(EMAIL_422), **_ERRORS}}},
    "/api/v1/support/conversations/{conversation_id}": {"get": {
        "summary": "A conversation of my org and its latest messages", "tags": ["support"],
        "parameters": _CID,
        "responses": {"200": {"description": "Conversation", "content": shape(
            conversation=OBJECT, messages=LIST, more={"type": "boolean"})}, **_ERRORS}}},
    "/api/v1/support/conversations/{conversation_id}/messages": {
        "get": {"summary": "A conversation's history, newest first", "tags": ["support"],
                "parameters": [*_CID, cursor(), limit(100, 50)],
                "responses": {"200": {"description": "Messages", "content": shape(
                    messages=LIST, next_before=CURSOR)}, **_ERRORS}},
        "post": {"summary": "Reply as the assigned agent", "tags": ["support"],
                 "parameters": _CID,
                 "requestBody": _body({"type": "object", "required": ["content"],
                                       "additionalProperties": False, "properties": {
                                           "content": content_schema(),
                                           "client_id": CLIENT_ID_SCHEMA}}),
                 "responses": {"201": {"description": "Sent", "content": shape(message=OBJECT)},
                               "409": problem("Conflict"), "410": problem("Gone"),
                               **_ERRORS}}},
    "/api/v1/support/conversations/{conversation_id}/takeover": _action(
        "Take the conversation over from the bot (or the queue)"),
    "/api/v1/support/conversations/{conversation_id}/handback": _action(
        "Hand the conversation back to the bot"),
    "/api/v1/support/conversations/{conversation_id}/transfer": _action(
        "Transfer to another online agent", {"type": "object", "required": ["agent"],
                                             "additionalProperties": False,
                                             "properties": {"agent": email_schema()}},
        EMAIL_422),
    "/api/v1/support/conversations/{conversation_id}/close": _action(
        "Close (end) the conversation"),
    "/api/v1/support/conversations/{conversation_id}/read": _action(
        "Mark the customer's messages read"),
    "/api/v1/support/dashboard": {"get": {
        "summary": "Admins: active conversations, queue, per-agent load and first responses",
        "tags": ["support"],
        "responses": {"200": {"description": "Dashboard", "content": _OBJ}, **_ERRORS}}},
    "/api/v1/support/agents": {"get": {
        "summary": "My org's agents (for transfers)", "tags": ["support"],
        "responses": {"200": {"description": "Agents", "content": shape(agents=LIST)},
                      **_ERRORS}}},
    "/agent": {"get": {
        "summary": "The agent console (HTML; also /agent/settings, /agent/dashboard)",
        "tags": ["support"], "security": [],
        "responses": {"200": {"description": "HTML page", "content": {
            "text/html": {"schema": {"type": "string"}}}},
            "404": problem("NotFound")}}},
}
