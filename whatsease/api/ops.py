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
# Keys in `Services.extras`: True while start-up work (the demo accounts) is
# under way, so /readyz does not send traffic to a half-started server; and a
# callable saying why the process is beyond repair (/healthz), or None.
STARTING = "ops.starting"
HEALTH_CHECK = "ops.health_check"


class HealthHandler(BaseHandler):
    """Liveness: 200 unless the process cannot recover by itself (its embedded
    database could not be restarted); then 503, so the platform restarts it."""

    def get(self) -> None:
        check = self.services.extras.get(HEALTH_CHECK)
        failure = check() if check is not None else None
        if failure:
            raise ServiceUnavailable(failure, code="unhealthy")
        self.write_json({"status": "ok"})


class ReadyHandler(BaseHandler):
    async def get(self) -> None:
        if self.services.draining:
            raise ServiceUnavailable("The server is shutting down.")
        if self.services.extras.get(STARTING):
            raise ServiceUnavailable("The server is still starting.", code="starting",
                                     retry_after=1)
        try:
            ok = await asyncio.wait_for(self.services.store.ping(), READY_TIMEOUT_SECS)
        except TimeoutError:
            ok = False
        if not ok:
            raise ServiceUnavailable("The database is unreachable.", code="database_down",
                                     retry_after=2)
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
                         "responses": {"200": {"description": "The process is up"},
                                       "503": {"$ref": "#/components/responses/Problem"}}}},
    "/readyz": {"get": {"summary": "Readiness: started, and the database answers",
                        "tags": ["operations"],
                        "security": [],
                        "responses": {"200": {"description": "Ready"},
                                      "503": {"$ref": "#/components/responses/Problem"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text format)", "tags": ["operations"],
                         "security": [],
                         "responses": {"200": {"description": "Metrics", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}}}},
}
