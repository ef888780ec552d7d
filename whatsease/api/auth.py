"""REST: register, log in, refresh, log out, and the caller's sessions."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.auth.service import parse_credentials
from whatsease.auth.sessionlist import approximate_place, describe_session
from whatsease.errors import NotFound, invalid
from whatsease.services import Services


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        fields = parse_credentials(self.json_body(), register=True)
        pair = await self.services.auth.register(
            fields["email"], fields["name"], fields["password"],
            user_agent=self.user_agent(), ip=self.client_ip())
        self.created(pair.to_json(), f"/api/v1/users/{pair.user.email}")


class LoginHandler(BaseHandler):
    async def post(self) -> None:
        fields = parse_credentials(self.json_body(), register=False)
        pair = await self.services.auth.login(fields["email"], fields["password"],
                                              user_agent=self.user_agent(), ip=self.client_ip())
        self.write_json(pair.to_json())


class RefreshHandler(BaseHandler):
    async def post(self) -> None:
        body = self.json_body()
        validation.check_fields(body, required=("refresh_token",))
        token = body["refresh_token"]
        if not isinstance(token, str) or not token:
            raise invalid("refresh_token", "must be a non-empty string")
        pair = await self.services.auth.refresh(token)
        self.write_json(pair.to_json())


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        principal = await self.authenticate()
        await self.services.auth.logout(principal)
        self.no_content()


class SessionsHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        sessions = await self.services.auth.list_sessions(principal)
        place = approximate_place(self.request.headers, self.services.config.trusted_proxy)
        self.write_json({"sessions": [describe_session(s, principal.session_id, place)
                                      for s in sessions]})


class SessionHandler(BaseHandler):
    async def delete(self, session_id: str) -> None:
        principal = await self.authenticate()
        if not await self.services.auth.revoke_session(principal, session_id):
            raise NotFound("No such session of yours.")
        self.no_content()


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/auth/register", RegisterHandler, services),
        route("/api/v1/auth/login", LoginHandler, services),
        route("/api/v1/auth/refresh", RefreshHandler, services),
        route("/api/v1/auth/logout", LogoutHandler, services),
        route("/api/v1/auth/sessions", SessionsHandler, services),
        route("/api/v1/auth/sessions/{session_id}", SessionHandler, services),
    ]


_TOKENS = {"$ref": "#/components/schemas/TokenPair"}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/auth/register": {"post": {
        "summary": "Create an account and log in", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Registration"}}}},
        "responses": {"201": {"description": "Registered", "content": {
            "application/json": {"schema": _TOKENS}}},
            "409": {"$ref": "#/components/responses/Problem"},
            "422": {"$ref": "#/components/responses/Problem"}}}},
    "/api/v1/auth/login": {"post": {
        "summary": "Log in with email and password", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Credentials"}}}},
        "responses": {"200": {"description": "Logged in", "content": {
            "application/json": {"schema": _TOKENS}}},
            "401": {"$ref": "#/components/responses/Problem"},
            "429": {"$ref": "#/components/responses/Problem"}}}},
    "/api/v1/auth/refresh": {"post": {
        "summary": "Exchange a refresh token for a new pair (the old one stops working)",
        "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["refresh_token"],
            "properties": {"refresh_token": {"type": "string"}}}}}},
        "responses": {"200": {"description": "New pair", "content": {
            "application/json": {"schema": _TOKENS}}},
            "401": {"$ref": "#/components/responses/Problem"}}}},
    "/api/v1/auth/logout": {"post": {
        "summary": "Revoke the current session", "tags": ["auth"],
        "responses": {"204": {"description": "Logged out"},
                      "401": {"$ref": "#/components/responses/Problem"}}}},
    "/api/v1/auth/sessions": {"get": {
        "summary": "List my active sessions", "tags": ["auth"],
        "responses": {"200": {"description": "Sessions", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"sessions": {
                "type": "array", "items": {"$ref": "#/components/schemas/Session"}}}}}}}}}},
    "/api/v1/auth/sessions/{session_id}": {"delete": {
        "summary": "Revoke one of my sessions", "tags": ["auth"],
        "parameters": [{"name": "session_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Revoked"},
                      "404": {"$ref": "#/components/responses/Problem"}}}},
}
