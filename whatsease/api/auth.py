"""REST: register, log in, refresh, log out, and the caller's sessions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import problem
from whatsease.auth.service import parse_credentials
from whatsease.errors import NotFound, invalid
from whatsease.services import Services


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        fields = parse_credentials(self.json_body(), register=True)
        pair = await self.services.auth.register(
            fields["email"], fields["name"], fields["password"],
            user_agent=self.user_agent(), ip=self.client_ip())
        # Quoted: an address may hold characters a header cannot carry raw.
        self.created(pair.to_json(), "/api/v1/users/" + quote(pair.user.email, safe="@"))


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
        self.write_json({"sessions": [s.to_json(principal.session_id) for s in sessions]})


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
_LOCATION = {"Location": {"description": "The new account's profile", "required": True,
                          "schema": {"type": "string"}}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/auth/register": {"post": {
        "summary": "Create an account and log in", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Registration"}}}},
        "responses": {"201": {"description": "Registered", "headers": _LOCATION, "content": {
            "application/json": {"schema": _TOKENS}}},
            "409": problem("Conflict")}}},
    "/api/v1/auth/login": {"post": {
        "summary": "Log in with email and password", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Credentials"}}}},
        "responses": {"200": {"description": "Logged in", "content": {
            "application/json": {"schema": _TOKENS}}},
            "401": problem("Unauthorized"),
            "429": problem("TooManyRequests")}}},
    "/api/v1/auth/refresh": {"post": {
        "summary": "Exchange a refresh token for a new pair (the old one stops working)",
        "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["refresh_token"], "additionalProperties": False,
            "properties": {"refresh_token": {"type": "string", "minLength": 1}}}}}},
        "responses": {"200": {"description": "New pair", "content": {
            "application/json": {"schema": _TOKENS}}},
            "401": problem("Unauthorized")}}},
    "/api/v1/auth/logout": {"post": {
        "summary": "Revoke the current session", "tags": ["auth"],
        "responses": {"204": {"description": "Logged out"}}}},
    "/api/v1/auth/sessions": {"get": {
        "summary": "List my active sessions", "tags": ["auth"],
        "responses": {"200": {"description": "Sessions", "content": {"application/json": {
            "schema": {"type": "object", "required": ["sessions"], "properties": {"sessions": {
                "type": "array", "items": {"$ref": "#/components/schemas/Session"}}}}}}}}}},
    "/api/v1/auth/sessions/{session_id}": {"delete": {
        "summary": "Revoke one of my sessions (another's answers 404)", "tags": ["auth"],
        "parameters": [{"name": "session_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Revoked"}}}},
}
