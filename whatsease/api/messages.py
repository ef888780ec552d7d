"""REST: send, page through, read, edit, receipt and delete messages."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import (
    EMAIL_422,
    content_schema,
    cursor,
    limit,
    problem,
    recipient_schema,
    unprocessable,
)
from whatsease.errors import NotFound, invalid
from whatsease.services import Services
from whatsease.storage.models import STATUSES, is_object_id


class MessagesHandler(BaseHandler):
    async def post(self) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("recipient", "content"), optional=("client_id",))
        message = await self.services.messaging.send(
            principal.email, validation.recipient(body["recipient"]),
            validation.content(body["content"]),
            client_id=validation.client_id(body.get("client_id")))
        self.created({"message": message.to_json()}, f"/api/v1/messages/{message.message_id}")

    async def get(self) -> None:
        principal = await self.authenticate()
        peer = self.get_query_argument("with", None)
        if not peer:
            raise invalid("with", "is required: the email (or bot id) of the other participant")
        peer = validation.recipient(peer, "with")
        before = self.get_query_argument("before", None)
        before = validation.object_id(before, "before") if before else None
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=100)
        messages = await self.services.messaging.history(principal.email, peer, before=before,
                                                         limit=limit)
        self.write_json({
            "messages": [m.to_json() for m in messages],
            "next_before": messages[-1].message_id if len(messages) == limit else None,
        })


class MessageHandler(BaseHandler):
    async def get(self, message_id: str) -> None:
        principal = await self.authenticate()
        message = await self.services.messaging.get(principal.email, _id(message_id))
        self.write_json({"message": message.to_json()})

    async def patch(self, message_id: str) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, optional=("content", "status"))
        if ("content" in body) == ("status" in body):
            raise invalid("content", "send exactly one of content (sender edits) or status "
                          "(recipient's receipt)")
        mid = _id(message_id)
        if "content" in body:
            message = await self.services.messaging.edit(
                principal.email, mid, validation.content(body["content"]))
        else:
            message = await self.services.messaging.set_status(
                principal.email, mid, validation.status(body["status"]))
        self.write_json({"message": message.to_json()})

    async def delete(self, message_id: str) -> None:
        principal = await self.authenticate()
        await self.services.messaging.delete(principal.email, _id(message_id))
        self.no_content()


def _id(message_id: str) -> str:
    # An id that cannot exist is simply not found, like anyone else's.
    if not is_object_id(message_id):
        raise NotFound("No such message.")
    return message_id.lower()


class ChatsHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        q = validation.query(self.get_query_argument("q", ""))
        filter_ = self.get_query_argument("filter", "all")
        if filter_ not in ("all", "unread", "bots", "people"):
            raise invalid("filter", "must be all, unread, bots or people")
        chats = await self.services.messaging.chats(principal.email, q=q, filter_=filter_)
        self.write_json({"chats": chats})


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/messages", MessagesHandler, services),
        route("/api/v1/messages/{message_id}", MessageHandler, services),
        route("/api/v1/chats", ChatsHandler, services),
    ]


_MESSAGE = {"type": "object", "required": ["message"],
            "properties": {"message": {"$ref": "#/components/schemas/Message"}}}
_ID = [{"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "24 hexadecimal characters; anything else is simply not found"}]
_PAGE = {"type": "object", "required": ["messages", "next_before"], "properties": {
    "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
    "next_before": {"type": ["string", "null"]}}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/messages": {
        "post": {"summary": "Send a message", "tags": ["messages"],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "$ref": "#/components/schemas/NewMessage"}}}},
                 "responses": {"201": {"description": "Stored (status Sent)", "headers": {
                     "Location": {"required": True, "schema": {"type": "string"}}},
                     "content": {"application/json": {"schema": _MESSAGE}}},
                     "404": problem("NotFound"), "422": unprocessable(EMAIL_422)}},
        "get": {"summary": "One conversation's history, newest first", "tags": ["messages"],
                "parameters": [
                    {"name": "with", "in": "query", "required": True,
                     "description": "The other participant: an email or a bot id",
                     "schema": recipient_schema()},
                    cursor(), limit(100, 50)],
                "responses": {"200": {"description": "A page of messages", "content": {
                    "application/json": {"schema": _PAGE}}},
                    "404": problem("NotFound"), "422": unprocessable(EMAIL_422)}}},
    "/api/v1/messages/{message_id}": {
        "get": {"summary": "One of my messages", "tags": ["messages"], "parameters": _ID,
                "responses": {"200": {"description": "The message", "content": {
                    "application/json": {"schema": _MESSAGE}}}}},
        "patch": {"summary": "Sender edits content, or recipient moves status forward "
                             "(exactly one of the two)",
                  "tags": ["messages"], "parameters": _ID,
                  "requestBody": {"required": True, "content": {"application/json": {
                      "schema": {"type": "object", "additionalProperties": False,
                                 "minProperties": 1, "maxProperties": 1, "properties": {
                                     "content": content_schema(),
                                     "status": {"enum": list(STATUSES)}}}}}},
                  "responses": {"200": {"description": "Updated", "content": {
                      "application/json": {"schema": _MESSAGE}}},
                      "409": problem("Conflict")}},
        "delete": {"summary": "Sender deletes a message", "tags": ["messages"],
                   "parameters": _ID,
                   "responses": {"204": {"description": "Deleted"}}}},
    "/api/v1/chats": {"get": {
        "summary": "My chat list, newest first", "tags": ["messages"],
        "parameters": [
            {"name": "q", "in": "query",
             "schema": {"type": "string", "maxLength": validation.MAX_QUERY_CHARS}},
            {"name": "filter", "in": "query",
             "schema": {"enum": ["all", "unread", "bots", "people"]}}],
        "responses": {"200": {"description": "Chats", "content": {"application/json": {
            "schema": {"type": "object", "required": ["chats"], "properties": {"chats": {
                "type": "array", "items": {"$ref": "#/components/schemas/Chat"}}}}}}}}}},
}
