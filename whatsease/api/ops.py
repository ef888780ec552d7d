"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.routing import URLSpec

from whatsease.api.base import BaseHandler, route
from whatsease.errors import ServiceUnavailable
from whatsease.services import Services

READY_TIMEOUT_SECS = 2.0


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyHandler(BaseHandler):
    async def get(self) -> None:
        if self.services.draining:
            raise ServiceUnavailable("The server is shutting down.")
        try:
            ok = await asyncio.wait_for(self.services.store.ping(), READY_TIMEOUT_SECS)
        except TimeoutError:
            ok = False
        if not ok:
            raise ServiceUnavailable("The database is unreachable.", code="database_down")
        self.write_json({"status": "ready", "sockets": self.services.hub.socket_count})


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/healthz", HealthHandler, services),
        route("/readyz", ReadyHandler, services),
        route("/metrics", MetricsHandler, services),
    ]


OPENAPI: dict[str, dict[str, Any]] = {
    "/healthz": {"get": {"summary": "Liveness", "tags": ["operations"], "security": [],
                         "responses": {"200": {"description": "The process is up", "content": {
                             "application/json": {"schema": {
                                 "type": "object", "required": ["status"],
                                 "properties": {"status": {"const": "ok"}}}}}}}}},
    "/readyz": {"get": {"summary": "Readiness: the database answers", "tags": ["operations"],
                        "security": [],
                        "responses": {"200": {"description": "Ready", "content": {
                            "application/json": {"schema": {
                                "type": "object", "required": ["status", "sockets"],
                                "properties": {"status": {"const": "ready"},
                                               "sockets": {"type": "integer"}}}}}},
                                      "503": {"$ref": "#/components/responses/Problem"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text format)", "tags": ["operations"],
                         "security": [],
                         "responses": {"200": {"description": "Metrics", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}}}},
}
