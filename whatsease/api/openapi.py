"""The OpenAPI 3.1 document, assembled from every route module's ``OPENAPI`` paths."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import __version__
from whatsease.api.base import BaseHandler, route
from whatsease.services import Services

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    "responses": {"Problem": {"description": "An RFC 9457 problem", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
    "schemas": {
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                    "properties": {"type": _STR, "title": _STR, "status": {"type": "integer"},
                                   "detail": _STR, "instance": _STR,
                                   "errors": {"type": "array", "items": {
                                       "type": "object", "properties": {
                                           "field": _STR, "message": _STR}}}}},
        "Registration": {"type": "object", "required": ["email", "name", "password"],
                         "properties": {"email": {"type": "string", "format": "email"},
                                        "name": {"type": "string", "maxLength": 80},
                                        "password": {"type": "string", "minLength": 8}}},
        "Credentials": {"type": "object", "required": ["email", "password"],
                        "properties": {"email": _STR, "password": _STR}},
        "TokenPair": {"type": "object", "properties": {
            "user": {"$ref": "#/components/schemas/User"}, "access_token": _STR,
            "refresh_token": _STR, "expires_in": {"type": "integer"}, "token_type": _STR}},
        "User": {"type": "object", "properties": {
            "email": _STR, "name": _STR, "role": {"enum": ["user", "agent", "admin", "bot"]},
            "last_seen": {"type": ["string", "null"], "format": "date-time"},
            "online": {"type": "boolean"}}},
        "Session": {"type": "object", "properties": {
            "id": _STR, "created_at": _TIME, "last_used": _TIME, "expires_at": _TIME,
            "user_agent": _STR, "current": {"type": "boolean"},
            "device": _STR, "browser": _STR, "last_active": _TIME,
            "place": {"type": ["string", "null"],
                      "description": "Approximate place, for this device behind a trusted "
                                     "proxy that sends location headers; else null"}}},
        "NewMessage": {"type": "object", "required": ["recipient", "content"], "properties": {
            "recipient": _STR, "content": {"type": "string", "minLength": 1, "maxLength": 4096},
            "client_id": {"type": "string", "maxLength": 64}}},
        "Message": {"type": "object", "required": [
            "message_id", "sender", "recipient", "content", "timestamp", "status",
            "is_bot_response"], "properties": {
            "message_id": _STR, "sender": _STR, "recipient": _STR, "content": _STR,
            "timestamp": _TIME, "status": {"enum": ["Sent", "Delivered", "Read"]},
            "is_bot_response": {"type": "boolean"}, "conversation_id": _STR,
            "client_id": {"type": ["string", "null"]},
            "edited_at": {"type": ["string", "null"], "format": "date-time"},
            "deleted": {"type": "boolean"}}},
        "Chat": {"type": "object", "properties": {
            "peer": _STR, "name": _STR, "is_bot": {"type": "boolean"},
            "online": {"type": "boolean"}, "unread_count": {"type": "integer"},
            "last_message": {"type": ["object", "null"]}, "updated_at": _TIME}},
        "BotInteraction": {"type": "object", "properties": {
            "id": _STR, "message_id": _STR, "message": _STR,
            "intent": {"type": ["string", "null"]}, "confidence": {"type": "number"},
            "reply": _STR, "reply_message_id": _STR,
            "source": {"enum": ["intent", "fallback", "llm", "llm_error"]}, "at": _TIME}},
        "ActivityEntry": {"type": "object", "properties": {
            "id": _STR, "kind": _STR, "actor": _STR, "target": {"type": ["string", "null"]},
            "message_id": {"type": ["string", "null"]}, "text": _STR, "time": _TIME}},
    },
}


def build_document() -> dict[str, Any]:
    from whatsease.api.registry import route_modules

    paths: dict[str, Any] = {}
    for module in route_modules():
        for path, operations in getattr(module, "OPENAPI", {}).items():
            paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WhatsEase API", "version": __version__,
                 "description": "REST API of WhatsEase. Errors are application/problem+json "
                                "(RFC 9457). Real-time traffic uses the WebSocket at /ws."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": COMPONENTS,
    }


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(build_document())

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")


def routes(services: Services) -> list[URLSpec]:
    return [route("/api/openapi.json", OpenApiHandler, services)]


OPENAPI: dict[str, dict[str, Any]] = {
    "/api/openapi.json": {"get": {"summary": "This document", "tags": ["operations"],
                                  "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
}
