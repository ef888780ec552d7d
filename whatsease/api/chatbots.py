"""REST: operators' chatbot instances, and the webhook each instance's platform posts to."""

from __future__ import annotations

from typing import Any

import orjson
from tornado.routing import URLSpec

from whatsease.api.base import JSON_TYPE, BaseHandler, check_duplicate_keys, route
from whatsease.api.openapi import problem
from whatsease.channels.base import (
    MAX_WEBHOOK_BYTES,
    InboundMessage,
    ParseError,
    WebhookRequest,
)
from whatsease.channels.metrics import WEBHOOK_REFUSED, count_in
from whatsease.chatbots.service import CHATBOTS_ROUTE, ChatbotService, get_chatbots
from whatsease.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from whatsease.services import Services
from whatsease.storage.models import User

# Operators' configs carry catalogues and prompts: a larger body than elsewhere.
MAX_CHATBOTS_BODY_BYTES = 512 * 1024
OPERATOR_ROLE = "admin"


class ChatbotHandler(BaseHandler):
    """Operators only: an account with the admin role (platform or organisation admin)."""

    def prepare(self) -> None:
        size = len(self.request.body or b"")
        if size > MAX_CHATBOTS_BODY_BYTES:
            raise PayloadTooLarge(f"The body is {size} bytes; the limit is "
                                  f"{MAX_CHATBOTS_BODY_BYTES}.")
        self.replay_to_owner(CHATBOTS_ROUTE)

    async def operator(self) -> User:
        principal = await self.authenticate()
        if principal.user.role != OPERATOR_ROLE:
            raise Forbidden("Only operators (admins) manage chatbot instances.")
        return principal.user

    def chatbots(self) -> ChatbotService:
        return get_chatbots(self.services)


class ChatbotsHandler(ChatbotHandler):
    async def get(self) -> None:
        owner = await self.operator()
        self.write_json({"chatbots": await self.chatbots().list(owner.email)})

    async def put(self) -> None:
        owner = await self.operator()
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != JSON_TYPE:
            raise UnsupportedMediaType(f"Send the body as {JSON_TYPE}, not {kind or 'nothing'}.")
        try:
            body = orjson.loads(self.request.body or b"")
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None
        check_duplicate_keys(self.request.body)
        self.write_json(await self.chatbots().put(owner, body))


class ChatbotHandlerOne(ChatbotHandler):
    async def delete(self, instance_id: str) -> None:
        owner = await self.operator()
        await self.chatbots().delete(owner.email, instance_id)
        self.no_content()


class ChatbotStatusHandler(ChatbotHandler):
    async def get(self, instance_id: str) -> None:
        owner = await self.operator()
        self.write_json(await self.chatbots().status(owner.email, instance_id))


class InstanceWebhookHandler(BaseHandler):
    """``/channels/{provider}/webhook/{instance_id}``: the platform of one instance.

    The provider verifies the raw body (signature or secret) before anything is
    parsed or stored: a refusal is 401 with nothing stored and only the reason
    logged. Messages are queued (stored) before the answer, and answered later.
    """

    def prepare(self) -> None:
        size = len(self.request.body or b"")
        if size > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"The body is {size} bytes; the limit is {MAX_WEBHOOK_BYTES}.")
        self.replay_to_owner(CHATBOTS_ROUTE)

    def _instance_provider(self, provider: str, instance_id: str) -> Any:
        instance = get_chatbots(self.services).instances.get(instance_id)
        if instance is None or instance.stored.chat_provider != provider or instance.chat is None:
            raise NotFound("No such webhook.")
        return instance.chat

    async def get(self, provider: str, instance_id: str) -> None:
        chat = self._instance_provider(provider, instance_id)
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        answer = chat.handshake(query)
        if answer is None:
            raise Forbidden("The verification token does not match.")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(answer.encode())

    async def post(self, provider: str, instance_id: str) -> None:
        chat = self._instance_provider(provider, instance_id)
        request = WebhookRequest(
            method="POST", headers={k.lower(): v for k, v in self.request.headers.items()},
            query={k: self.get_query_argument(k) for k in self.request.query_arguments},
            body=self.request.body or b"")
        verdict = chat.verify(request)
        if not verdict.ok:
            WEBHOOK_REFUSED.labels(provider).inc()
            raise Unauthorized(f"The webhook is not verified: {verdict.reason}.",
                               code="webhook_unverified")
        try:
            events = chat.parse(request.body)
        except ParseError as exc:
            raise BadRequest(f"The webhook body is not understood: {exc}",
                             code="malformed_webhook") from None
        service = get_chatbots(self.services)
        outcomes: dict[str, int] = {}
        for event in events:
            if isinstance(event, InboundMessage):
                count_in(provider, event.kind)
                outcome = await service.receive(instance_id, event)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        self.write_json({"received": outcomes})


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/chatbots", ChatbotsHandler, services),
        route("/api/v1/chatbots/{instance_id}", ChatbotHandlerOne, services),
        route("/api/v1/chatbots/{instance_id}/status", ChatbotStatusHandler, services),
        route("/channels/{provider}/webhook/{instance_id}", InstanceWebhookHandler, services),
    ]


_ID = {"name": "instance_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PROVIDER = {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}}
_PROVIDER_CONFIG = {
    "type": "object", "required": ["provider_name"], "additionalProperties": False,
    "properties": {"provider_name": {"type": "string", "minLength": 1, "maxLength": 64},
                   "provider_config": {"type": "object"}}}
_INSTANCE_CONFIG = {
    "type": "object", "additionalProperties": False,
    "required": ["user_id", "chat_provider_config", "queue_config", "llm_provider_config"],
    "properties": {
        "user_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:@+-]{1,128}$"},
        "respond_to_whitelist": {"type": ["array", "null"], "maxItems": 1000, "items": {
            "type": "string", "pattern": "^[A-Za-z0-9_.:@+-]{1,64}$"},
            "description": "Sender ids that get answers (a contact such as wa:+4915112345678 "
                           "or its bare id); empty or absent: everyone"},
        "chat_provider_config": {**_PROVIDER_CONFIG, "description": (
            "A chat provider (whatsapp_cloud, telegram, loopback, or an installed one) and "
            "its settings; allow_group_messages (default false) answers group chats")},
        "queue_config": {"type": "object", "additionalProperties": False,
                         "required": ["max_messages", "max_characters", "max_days"],
                         "properties": {
                             "max_messages": {"type": "integer", "minimum": 1,
                                              "maximum": 1000},
                             "max_characters": {"type": "integer", "minimum": 1,
                                                "maximum": 200000},
                             "max_days": {"type": "number", "exclusiveMinimum": 0,
                                          "maximum": 365}}},
        "llm_provider_config": {**_PROVIDER_CONFIG, "description": (
            "An LLM provider (catalogue, openai_compatible, fake, or an installed one) and "
            "its settings; api_key is write-only")},
        "handoff_config": {"type": ["object", "null"], "additionalProperties": False,
                           "required": ["org_id", "auto_handoff_threshold"], "properties": {
                               "org_id": {"type": "string", "minLength": 1, "maxLength": 64},
                               "auto_handoff_threshold": {"type": "number",
                                                          "exclusiveMinimum": 0, "maximum": 1},
                               "low_confidence_turns": {"type": "integer", "minimum": 1,
                                                        "maximum": 20}},
                           "description": (
                               "Hand a sender to this organisation's agents (you must be its "
                               "admin) once this many answers in a row (default 2) scored "
                               "below the threshold")},
        "keep_secrets": {"type": "boolean", "description": (
            "On replace: keep the stored keys and tokens that this config leaves out "
            "(same provider only). Default false: what is left out is removed")}}}
_CHATBOT = {"type": "object", "required": [
    "instance_id", "user_id", "respond_to_whitelist", "chat_provider_config", "queue_config",
    "llm_provider_config", "secrets_set", "state", "webhook_path"], "properties": {
    "instance_id": {"type": "string"}, "user_id": {"type": "string"},
    "respond_to_whitelist": {"type": "array", "items": {"type": "string"}},
    "chat_provider_config": {"type": "object"}, "queue_config": {"type": "object"},
    "llm_provider_config": {"type": "object"},
    "secrets_set": {"type": "array", "items": {"type": "string"},
                    "description": "Which write-only settings hold a value (never shown)"},
    "state": {"enum": ["running", "error", "stopped"]}, "webhook_path": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"}}}
_STATUS = {"type": "object", "required": [
    "instance_id", "state", "chat_provider", "llm_provider", "queue_depth", "queues", "counts",
    "tokens", "latency", "conversations", "last_error"], "properties": {
    "instance_id": {"type": "string"}, "user_id": {"type": "string"},
    "state": {"enum": ["running", "error"]}, "problem": {"type": ["string", "null"]},
    "chat_provider": {"type": "object", "properties": {
        "provider_name": {"type": "string"}, "health": {"enum": ["unknown", "ok", "error"]},
        "link": {"type": ["object", "null"]}}},
    "llm_provider": {"type": "object", "properties": {
        "provider_name": {"type": "string"}, "health": {"enum": ["unknown", "ok", "error"]}}},
    "queue_depth": {"type": "integer", "minimum": 0},
    "queues": {"type": "array", "items": {"type": "object"}},
    "counts": {"type": "object"}, "tokens": {"type": "object"}, "latency": {"type": "object"},
    "conversations": {"type": "array", "items": {"type": "object"}},
    "last_error": {"type": ["object", "null"]}, "webhook_path": {"type": "string"}}}

OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/chatbots": {
        "get": {"summary": "My chatbot instances (operators); keys are never shown",
                "tags": ["chatbots"], "responses": {
                    "200": {"description": "Instances", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["chatbots"], "properties": {
                            "chatbots": {"type": "array", "items": _CHATBOT}}}}}},
                    "403": problem("Forbidden")}},
        "put": {"summary": "Create or replace chatbot instances (operators), all or none",
                "tags": ["chatbots"],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "array", "minItems": 1, "maxItems": 50,
                               "items": _INSTANCE_CONFIG}}}},
                "responses": {
                    "200": {"description": "Each entry's instance, in order", "content": {
                        "application/json": {"schema": {"type": "array", "items": {
                            "type": "object", "required": ["user_id", "instance_id"],
                            "properties": {"user_id": {"type": "string"},
                                           "instance_id": {"type": "string"}}}}}}},
                    "403": problem("Forbidden"),
                    "422": {"$ref": "#/components/responses/Unprocessable"}}}},
    "/api/v1/chatbots/{instance_id}": {"delete": {
        "summary": "Stop and delete a chatbot instance with its queues", "tags": ["chatbots"],
        "parameters": [_ID], "responses": {"204": {"description": "Deleted"},
                                           "403": problem("Forbidden")}}},
    "/api/v1/chatbots/{instance_id}/status": {"get": {
        "summary": "A chatbot instance's state, provider health, queues, counts and usage",
        "tags": ["chatbots"], "parameters": [_ID],
        "responses": {"200": {"description": "Status", "content": {"application/json": {
            "schema": _STATUS}}}, "403": problem("Forbidden")}}},
    "/channels/{provider}/webhook/{instance_id}": {
        "get": {"summary": "A platform's subscription check for one chatbot instance",
                "tags": ["chatbots"], "security": [], "parameters": [_PROVIDER, _ID],
                "responses": {"200": {"description": "The challenge, echoed", "content": {
                    "text/plain": {"schema": {"type": "string"}}}},
                    "403": problem("Forbidden")}},
        "post": {"summary": "A platform's webhook for one chatbot instance (signed)",
                 "tags": ["chatbots"], "security": [], "parameters": [_PROVIDER, _ID],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object"}}}},
                 "responses": {"200": {"description": "Accepted; answers follow", "content": {
                     "application/json": {"schema": {"type": "object"}}}},
                     "401": problem("Unauthorized")}}},
}
