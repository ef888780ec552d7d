"""REST: the activity visible to the caller, newest first."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease import validation
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import cursor, limit
from whatsease.services import Services
from whatsease.storage.models import ActivityEntry, is_bot

MAX_KINDS = 20


class ActivityHandler(BaseHandler):
    async def get(self) -> None:
        principal = await self.authenticate()
        before = self.get_query_argument("before", None)
        before = validation.object_id(before, "before") if before else None
        limit = validation.limit(self.get_query_argument("limit", None), default=50,
                                 maximum=200)
        kinds = [k for k in self.get_query_arguments("kind") if k][:MAX_KINDS]
        entries = await self.services.activity.list_for(principal.email, before=before,
                                                        limit=limit, kinds=kinds)
        self.write_json({
            "entries": [e.to_json() for e in entries],
            "next_before": entries[-1].entry_id if len(entries) == limit else None,
            "people": await self.display_names(entries),
        })

    async def display_names(self, entries: list[ActivityEntry]) -> dict[str, str]:
        """Each actor's and target's display name, in one query, so the client can say
        "Bob Example" (with the email on hover) instead of an address."""
        addresses = {a for e in entries for a in (e.actor, e.target) if a}
        bots = {a for a in addresses if is_bot(a)}
        found = await self.services.store.users.get_many(addresses - bots)
        names = {email: user.name for email, user in found.items()}
        names.update({bot: self.services.messaging.bot_name(bot) for bot in bots})
        return names


def routes(services: Services) -> list[URLSpec]:
    return [route("/api/v1/activity", ActivityHandler, services)]


OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/activity": {"get": {
        "summary": "Recent activity involving me, newest first", "tags": ["activity"],
        "parameters": [
            cursor(), limit(200, 50),
            {"name": "kind", "in": "query", "schema": {"type": "string"},
             "description": "Repeat to filter by several kinds (message.sent, user.login, "
                            f"...; the first {MAX_KINDS} count)"}],
        "responses": {"200": {"description": "Entries", "content": {"application/json": {
            "schema": {"type": "object", "required": ["entries", "next_before"], "properties": {
                "entries": {"type": "array",
                            "items": {"$ref": "#/components/schemas/ActivityEntry"}},
                "next_before": {"type": ["string", "null"]},
                "people": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Display name of each actor and target "
                                          "(email or bot id → name)"}}}}}}}}},
}
