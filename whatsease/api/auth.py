"""REST: register, log in, refresh, log out, the caller's sessions, and passwords."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, quote_segment, route
from whatsease.api.openapi import EMAIL_422, email_schema, problem, problems, unprocessable
from whatsease.api.shell import content_security_policy
from whatsease.auth.reset import RESET_PATH
from whatsease.auth.service import parse_credentials
from whatsease.auth.sessionlist import approximate_place, describe_session
from whatsease.errors import NotFound, invalid
from whatsease.services import Services


class RegisterHandler(BaseHandler):
    async def post(self) -> None:
        fields = parse_credentials(self.json_body(), register=True)
        # Built before the account exists, so nothing can fail after it does.
        location = f"/api/v1/users/{quote_segment(fields['email'])}"
        pair = await self.services.auth.register(
            fields["email"], fields["name"], fields["password"],
            user_agent=self.user_agent(), ip=self.client_ip())
        self.created(pair.to_json(), location)


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


def _password_field(body: dict[str, Any], field: str) -> str:
    value = body[field]
    if not isinstance(value, str) or len(value) > validation.MAX_PASSWORD_CHARS:
        raise invalid(field, f"must be a string of at most {validation.MAX_PASSWORD_CHARS} "
                             "characters")
    return value


class PasswordHandler(BaseHandler):
    """Change my password (old + new); my other sessions end, this one goes on."""

    async def post(self) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("current_password", "new_password"))
        current = _password_field(body, "current_password")
        new = validation.password(body["new_password"], "new_password")
        await self.services.auth.change_password(principal, current, new, ip=self.client_ip())
        self.no_content()


class PasswordResetHandler(BaseHandler):
    """Ask for a reset link by email (when the server sends mail): always 202."""

    async def post(self) -> None:
        body = self.json_body()
        validation.check_fields(body, required=("email",))
        email = validation.email(body["email"])
        await self.services.auth.resets.request(email, self.client_ip())
        self.write_json({"status": "If an account has this email, a reset link is on its "
                                   "way."}, status=202)


class PasswordResetConfirmHandler(BaseHandler):
    """Set a new password with a reset link's token; every session of the account ends."""

    async def post(self) -> None:
        body = self.json_body()
        validation.check_fields(body, required=("token", "password"))
        token = body["token"]
        if not isinstance(token, str):
            raise invalid("token", "must be a string")
        password = validation.password(body["password"])
        await self.services.auth.resets.redeem(token.strip(), password)
        self.no_content()


STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
RESET_PAGE = STATIC_DIR / "reset" / "index.html"


class ResetPageHandler(BaseHandler):
    """``/reset-password``: the page a reset link opens (the token stays in the fragment)."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        # The page is opened from a secret link: no Referer leaves it, nothing caches it.
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")

    def get(self) -> None:
        self.set_header("Content-Security-Policy",
                        content_security_policy(None, self.socket_origin()))
        self.render(str(RESET_PAGE), by_email=self.services.auth.resets.by_email)

    def get_template_path(self) -> str:
        return str(STATIC_DIR)


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/auth/register", RegisterHandler, services),
        route("/api/v1/auth/login", LoginHandler, services),
        route("/api/v1/auth/refresh", RefreshHandler, services),
        route("/api/v1/auth/logout", LogoutHandler, services),
        route("/api/v1/auth/sessions", SessionsHandler, services),
        route("/api/v1/auth/sessions/{session_id}", SessionHandler, services),
        route("/api/v1/auth/password", PasswordHandler, services),
        route("/api/v1/auth/password-reset", PasswordResetHandler, services),
        route("/api/v1/auth/password-reset/confirm", PasswordResetConfirmHandler, services),
        route(RESET_PATH, ResetPageHandler, services),
    ]


_TOKENS = {"$ref": "#/components/schemas/TokenPair"}
_PASSWORD = {"type": "string", "minLength": validation.MIN_PASSWORD_CHARS,
             "maxLength": validation.MAX_PASSWORD_CHARS,
             "description": "Common and guessable passwords are refused (422) by a strength "
                            "estimator (zxcvbn score 3 of 4), as are ones built from the "
                            "account's email or name."}
_WEAK = ("A password the strength estimator (zxcvbn) scores below 3 of 4, or one built from "
         "the account's email or name, is refused: the message says why.")
_LOCATION = {"Location": {"description": "The new account's profile", "required": True,
                          "schema": {"type": "string"}}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/auth/register": {"post": {
        "summary": "Create an account and log in", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Registration"}}}},
        "responses": {"201": {"description": "Registered", "headers": _LOCATION, "content": {
            "application/json": {"schema": _TOKENS}}},
            "409": problem("Conflict"),
            "422": unprocessable(EMAIL_422, "An email whose local part mixes letters of "
                                            "different scripts (e.g. Latin with Cyrillic) is "
                                            "refused.", _WEAK)}}},
    "/api/v1/auth/login": {"post": {
        "summary": "Log in with email and password", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Credentials"}}}},
        "responses": {"200": {"description": "Logged in", "content": {
            "application/json": {"schema": _TOKENS}}},
            "401": problem("Unauthorized"),
            "422": unprocessable(EMAIL_422),
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
        "responses": {"204": {"description": "Revoked"},
                      "404": problem("NotFound")}}},
    "/api/v1/auth/password": {"post": {
        "summary": "Change my password; my other sessions end", "tags": ["auth"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["current_password", "new_password"],
            "additionalProperties": False,
            "properties": {"current_password": {"type": "string", "maxLength": 256},
                           "new_password": _PASSWORD}}}}},
        "responses": {"204": {"description": "Changed; this session goes on"},
                      **problems("400", "401", "415"),
                      "422": unprocessable("current_password is refused when it is not the "
                                           "account's password (counted as a failed login); "
                                           "new_password when it equals it.", _WEAK),
                      "429": problem("TooManyRequests")}}},
    "/api/v1/auth/password-reset": {"post": {
        "summary": "Mail me a one-time password-reset link (when the server sends mail)",
        "description": "Answers 202 whether or not an account has the email. 404 when the "
                       "server has no SMTP settings: an operator then issues links with "
                       "`python -m whatsease user reset-link EMAIL`.",
        "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["email"], "additionalProperties": False,
            "properties": {"email": email_schema()}}}}},
        "responses": {"202": {"description": "Accepted", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"status": {"type": "string"}}}}}},
            **problems("400", "404", "415", "429"), "422": unprocessable(EMAIL_422)}}},
    "/api/v1/auth/password-reset/confirm": {"post": {
        "summary": "Choose a new password with a reset link's token; every session ends",
        "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["token", "password"], "additionalProperties": False,
            "properties": {"token": {"type": "string", "maxLength": 100},
                           "password": _PASSWORD}}}}},
        "responses": {"204": {"description": "Password set"}, "400": problem("BadRequest"),
                      "415": problem("UnsupportedMediaType"),
                      "422": unprocessable("token is refused unless it is the newest link "
                                           "issued for the account, unused and unexpired.",
                                           _WEAK)}}},
    RESET_PATH: {"get": {
        "summary": "The page a password-reset link opens (HTML; the token is in the "
                   "fragment)", "tags": ["auth"], "security": [],
        "responses": {"200": {"description": "HTML page", "content": {
            "text/html": {"schema": {"type": "string"}}}}}}},
}
