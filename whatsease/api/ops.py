"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.routing import URLSpec

from whatsease.api.base import BaseHandler, NotFoundHandler, route
from whatsease.api.cluster import ClusterHandler
from whatsease.api.openapi import problem
from whatsease.errors import NotFound, ServiceUnavailable, Unauthorized
from whatsease.services import Services

READY_TIMEOUT_SECS = 2.0

class HealthHandler(BaseHandler):
    """Liveness: 200 unless the process cannot recover by itself (its embedded
    database could not be restarted); then 503, so the platform restarts it."""

    def get(self) -> None:
        check = self.services.health_check
        failure = check() if check is not None else None
        if failure:
            raise ServiceUnavailable(failure, code="unhealthy")
        self.write_json({"status": "ok"})


class ReadyHandler(BaseHandler):
    async def get(self) -> None:
        if self.services.draining:
            raise ServiceUnavailable("The server is shutting down.")
        if self.services.starting:
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
    """Prometheus metrics.

    With ``WHATSEASE_METRICS_PORT`` set they are served only on that port (the
    public one answers 404); with ``WHATSEASE_METRICS_TOKEN`` set, only to a
    caller bearing that token.
    """

    def initialize(self, services: Services, route: str,
                   dedicated: bool = False) -> None:
        super().initialize(services, route)
        self.dedicated = dedicated

    def get(self) -> None:
        config = self.services.config
        if config.metrics_port and not self.dedicated:
            raise NotFound(f"No API route {self.request.path}.")
        if config.metrics_token:
            scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    token.strip().encode(), config.metrics_token.encode()):
                raise Unauthorized("Send the metrics token: Authorization: Bearer <token>.",
                                   code="missing_token")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


def metrics_application(services: Services) -> tornado.web.Application:
    """The application of the dedicated metrics port: ``/metrics`` and ``/api/v1/cluster``."""
    return tornado.web.Application(
        [route("/metrics", MetricsHandler, services, dedicated=True),
         route("/api/v1/cluster", ClusterHandler, services, dedicated=True)],
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services, "route": "(metrics port)"})


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
                                 "properties": {"status": {"const": "ok"}}}}}},
                                       "503": problem("Unavailable")}}},
    "/readyz": {"get": {"summary": "Readiness: started, and the database answers",
                        "tags": ["operations"],
                        "security": [],
                        "responses": {"200": {"description": "Ready", "content": {
                            "application/json": {"schema": {
                                "type": "object", "required": ["status", "sockets"],
                                "properties": {"status": {"const": "ready"},
                                               "sockets": {"type": "integer"}}}}}},
                                      "503": problem("Unavailable")}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text format)", "tags": ["operations"],
        "description": "With WHATSEASE_METRICS_TOKEN set, send it as a bearer token; with "
                       "WHATSEASE_METRICS_PORT set, metrics are served on that port only and "
                       "this path answers 404.",
        "security": [],
        "responses": {"200": {"description": "Metrics", "content": {
            "text/plain": {"schema": {"type": "string"}}}},
            "401": problem("Unauthorized"),
            "404": problem("NotFound")}}},
}
