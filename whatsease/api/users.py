"""REST: find people, read profiles, update and delete my account."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import limit, name_schema
from whatsease.errors import NotFound, Unprocessable
from whatsease.services import Services
from whatsease.storage.models import is_bot


class UsersHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        q = validation.query(self.get_query_argument("q", ""))
        limit = validation.limit(self.get_query_argument("limit", None), default=20, maximum=50)
        users = await self.services.accounts.search(principal.email, q, limit=limit)
        self.write_json({"users": [u.to_public() for u in users]})


class MeHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        self.write_json({"user": principal.user.to_private()})

    async def patch(self) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("name",))
        user = await self.services.accounts.update(principal.email,
                                                   name=validation.name(body["name"]))
        self.write_json({"user": user.to_private()})

    async def delete(self) -> None:
        principal = await self.authenticate()
        await self.services.accounts.delete(principal.email)
        self.no_content()


class UserHandler(BaseHandler):
    async def get(self, email: str) -> None:
        await self.authenticate()
        # Tornado has already percent-decoded the segment; decoding again would
        # turn an address's own "%25" into "%".
        address = email.strip().lower()
        if is_bot(address):
            if address not in self.services.messaging.bots:
                raise NotFound("No such user.")
            self.write_json({"user": {"email": address, "role": "bot", "last_seen": None,
                                      "name": self.services.messaging.bot_name(address)}})
            return
        try:
            address = validation.email(address)
        except Unprocessable:
            raise NotFound("No such user.") from None
        user = await self.services.accounts.get(address)
        body = user.to_public()
        body["online"] = self.services.hub.is_online(user.email)
        self.write_json({"user": body})


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/users", UsersHandler, services),
        route("/api/v1/users/me", MeHandler, services),
        route("/api/v1/users/{email}", UserHandler, services),
    ]


_USER = {"type": "object", "required": ["user"],
         "properties": {"user": {"$ref": "#/components/schemas/User"}}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/users": {"get": {
        "summary": "Search users by name or email", "tags": ["users"],
        "parameters": [
            {"name": "q", "in": "query", "description": "Trimmed; empty lists everyone",
             "schema": {"type": "string", "maxLength": validation.MAX_QUERY_CHARS}},
            limit(50, 20)],
        "responses": {"200": {"description": "Matching users", "content": {"application/json": {
            "schema": {"type": "object", "required": ["users"], "properties": {"users": {
                "type": "array", "items": {"$ref": "#/components/schemas/User"}}}}}}}}}},
    "/api/v1/users/me": {
        "get": {"summary": "My profile", "tags": ["users"], "responses": {"200": {
            "description": "Profile", "content": {"application/json": {"schema": _USER}}}}},
        "patch": {"summary": "Change my display name", "tags": ["users"],
                  "requestBody": {"required": True, "content": {"application/json": {
                      "schema": {"type": "object", "required": ["name"],
                                 "additionalProperties": False,
                                 "properties": {"name": name_schema()}}}}},
                  "responses": {"200": {"description": "Updated", "content": {
                      "application/json": {"schema": _USER}}}}},
        "delete": {"summary": "Delete my account and my conversations", "tags": ["users"],
                   "responses": {"204": {"description": "Deleted"}}}},
    "/api/v1/users/{email}": {"get": {
        "summary": "Someone's public profile (an email or a bot id)", "tags": ["users"],
        "parameters": [{"name": "email", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Profile", "content": {
            "application/json": {"schema": _USER}}}}}},
}
