"""The modules the server is assembled from.

Route modules each have ``routes(services)`` and ``OPENAPI`` paths: ``make_app``
mounts them in this order and ``openapi.py`` documents them, so a route cannot
be served without being documented (tests/api/test_openapi.py).

Service modules each have ``async def setup(services)`` (called once at
start-up, after the core services exist) and may have ``async def
shutdown(services)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ROUTE_MODULES = (
    "whatsease.api.ops",
    "whatsease.api.sessions",
    "whatsease.api.auth",
    "whatsease.api.users",
    "whatsease.api.messages",
    "whatsease.api.activity",
    "whatsease.realtime.handler",
    "whatsease.api.bot",
    "whatsease.api.support",
    "whatsease.api.widget",
    "whatsease.api.support_ws",
    "whatsease.api.analytics",
    "whatsease.api.openapi",
)

SERVICE_MODULES: tuple[str, ...] = (
    "whatsease.bot.service",
    "whatsease.realtime.service",
    "whatsease.support.service",
    "whatsease.analytics.service",
)


def route_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in ROUTE_MODULES]


def service_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SERVICE_MODULES]
