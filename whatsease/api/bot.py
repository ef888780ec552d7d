"""REST: the caller's interactions with the assistant, and forgetting what it remembers."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import cursor, limit, problem
from whatsease.bot.service import Assistant
from whatsease.errors import NotFound, Unprocessable
from whatsease.services import Services


def _assistant(services: Services) -> Assistant:
    assistant = services.assistant
    if assistant is None:
        raise NotFound("The assistant is not enabled on this server.")
    return assistant


class BotHistoryHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        before = self.get_query_argument("before", None)
        before = validation.object_id(before, "before") if before else None
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=100)
        turns = await _assistant(self.services).history(principal.email, before=before,
                                                        limit=limit)
        self.write_json({"interactions": turns,
                         "next_before": turns[-1]["id"] if len(turns) == limit else None})


class BotLanguageHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        self.write_json(await _assistant(self.services).language(principal.email))

    async def put(self) -> None:
        principal = await self.authenticate()
        body = self.json_body()
        validation.check_fields(body, required=("language",))
        language = body["language"]
        if language is not None and not isinstance(language, str):
            raise Unprocessable("The language must be a language code or null.",
                                errors=[{"field": "language",
                                         "message": "must be a string or null"}])
        self.write_json(await _assistant(self.services).set_language(principal.email, language))


class BotContextHandler(BaseHandler):
    async def delete(self) -> None:
        principal = await self.authenticate()
        await _assistant(self.services).forget(principal.email)
        self.no_content()


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/bot/history", BotHistoryHandler, services),
        route("/api/v1/bot/context", BotContextHandler, services),
        route("/api/v1/bot/language", BotLanguageHandler, services),
    ]


_LANGUAGE = {"type": "object", "required": ["language", "current", "languages"], "properties": {
    "language": {"type": ["string", "null"],
                 "description": "The chosen language (ISO 639-1); null: detected"},
    "current": {"type": ["string", "null"],
                "description": "The language of the last reply; null: none yet"},
    "languages": {"type": "array", "items": {"type": "string"}}}}
OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/bot/history": {"get": {
        "summary": "My interactions with bot:whatsease, newest first", "tags": ["bot"],
        "parameters": [cursor(), limit(100, 50)],
        "responses": {"200": {"description": "Interactions", "content": {"application/json": {
            "schema": {"type": "object", "required": ["interactions", "next_before"],
                       "properties": {
                           "interactions": {"type": "array", "items": {
                               "$ref": "#/components/schemas/BotInteraction"}},
                           "next_before": {"type": ["string", "null"]}}}}}},
            "404": problem("NotFound")}}},
    "/api/v1/bot/language": {
        "get": {"summary": "The language bot:whatsease speaks with me", "tags": ["bot"],
                "responses": {"200": {"description": "Language", "content": {
                    "application/json": {"schema": _LANGUAGE}}},
                    "404": problem("NotFound")}},
        "put": {"summary": "Choose the language bot:whatsease speaks with me (null: the "
                           "language of each message)", "tags": ["bot"],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["language"],
                               "additionalProperties": False,
                               "properties": {"language": {
                                   "type": ["string", "null"],
                                   "description": "One of the languages GET lists (the "
                                                  "catalogue's, so 422 names them), or null"}}}}}},
                "responses": {"200": {"description": "Chosen", "content": {
                    "application/json": {"schema": _LANGUAGE}}},
                    "404": problem("NotFound"), "422": problem("Unprocessable")}}},
    "/api/v1/bot/context": {"delete": {
        "summary": "Make the assistant forget my context, memory and recent turns",
        "tags": ["bot"], "responses": {"204": {"description": "Forgotten"},
                                       "404": problem("NotFound")}}},
}
