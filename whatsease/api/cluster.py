"""``GET /api/v1/cluster``: this instance's view of the cluster, for operators.

Platform admins (role ``admin`` with no org) may read it on the public port;
on the metrics port (``WHATSEASE_METRICS_PORT``) it is served beside
``/metrics``, behind the metrics token if one is set.
"""

from __future__ import annotations

import hmac
from typing import Any

from tornado.routing import URLSpec

from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import problems
from whatsease.errors import Forbidden, Unauthorized
from whatsease.services import Services
from whatsease.support.orgs import is_platform_admin


def cluster_status(services: Services) -> dict[str, Any]:
    """Self, members (live and down), the ring generation and sockets per member."""
    cluster = services.cluster
    hub = services.hub
    if cluster is None:
        return {"mode": "off", "self": None, "generation": 0, "members": [
            {"id": None, "self": True, "live": True, "sockets": hub.socket_count,
             "users": hub.user_count}]}
    membership = cluster.membership
    peers = cluster.router.status() if cluster.router is not None else {}
    live = membership.members
    members = []
    for member_id, member in sorted(membership.listed.items()):
        entry: dict[str, Any] = {"id": member_id, "url": member.url, "region": member.region,
                                 "self": member_id == cluster.me.id, "live": member_id in live}
        if member_id == cluster.me.id:
            entry.update(sockets=hub.socket_count, users=hub.user_count)
        else:
            entry.update(peers.get(member_id, {"link": "down", "sockets": 0, "users": 0}))
        members.append(entry)
    return {"mode": services.config.cluster, "self": cluster.me.id,
            "generation": cluster.ring.generation, "members": members}


class ClusterHandler(BaseHandler):
    def initialize(self, services: Services, route: str, dedicated: bool = False) -> None:
        super().initialize(services, route)
        self.dedicated = dedicated

    async def get(self) -> None:
        if self.dedicated:
            token = self.services.config.metrics_token
            scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
            if token and (scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), token.encode())):
                raise Unauthorized("Send the metrics token: Authorization: Bearer <token>.",
                                   code="missing_token")
        else:
            principal = await self.authenticate()
            if not is_platform_admin(principal.user):
                raise Forbidden("Only operators (platform admins) may read the cluster's state.")
        self.write_json(cluster_status(self.services))


def routes(services: Services) -> list[URLSpec]:
    return [route("/api/v1/cluster", ClusterHandler, services)]


_MEMBER = {"type": "object", "required": ["id", "self", "live", "sockets"], "properties": {
    "id": {"type": ["string", "null"]}, "url": {"type": "string"},
    "region": {"type": "string"}, "self": {"type": "boolean"}, "live": {"type": "boolean"},
    "link": {"enum": ["up", "down"]}, "queued": {"type": "integer"},
    "sockets": {"type": "integer"}, "users": {"type": "integer"}}}

OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/cluster": {"get": {
        "summary": "The cluster as this instance sees it (operators)",
        "description": (
            "Platform admins only (403 otherwise); also served on WHATSEASE_METRICS_PORT "
            "behind the metrics token. mode (off, static, fly), self (this member's id), "
            "the ring generation, and every listed member: live (in the ring), its internal "
            "link (up/down) and the sockets and users it holds. See docs/architecture.md, "
            "\"Cluster\"."),
        "tags": ["operations"],
        "responses": {"200": {"description": "The cluster", "content": {"application/json": {
            "schema": {"type": "object", "required": ["mode", "self", "generation", "members"],
                       "properties": {
                           "mode": {"enum": ["off", "static", "fly"]},
                           "self": {"type": ["string", "null"]},
                           "generation": {"type": "integer"},
                           "members": {"type": "array", "items": _MEMBER}}}}}},
            **problems("401", "403")}}},
}
