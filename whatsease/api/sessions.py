"""REST: log out all my other sessions (the list itself is in api/auth.py)."""

from __future__ import annotations

from typing import Any

from tornado.routing import URLSpec

from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import problem
from whatsease.auth.sessionlist import revoke_other_sessions
from whatsease.services import Services


class RevokeOthersHandler(BaseHandler):
    async def post(self) -> None:
        principal = await self.authenticate()
        revoked = await revoke_other_sessions(self.services.auth, principal)
        self.write_json({"revoked": revoked})


def routes(services: Services) -> list[URLSpec]:
    # Mounted before api/auth.py, whose /sessions/{session_id} would take this path.
    return [route("/api/v1/auth/sessions/revoke-others", RevokeOthersHandler, services)]


OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/auth/sessions/revoke-others": {"post": {
        "summary": "Log out all my other sessions (this one stays)", "tags": ["auth"],
        "description": "Every other session of the caller is revoked and its sockets closed "
                       "with 4001; the answer says how many ended.",
        "responses": {
            "200": {"description": "Revoked", "content": {"application/json": {"schema": {
                "type": "object", "required": ["revoked"],
                "properties": {"revoked": {"type": "integer", "minimum": 0}}}}}},
            "401": problem("Unauthorized")}}},
}
