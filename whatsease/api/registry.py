"""The modules the server is assembled from.

Both lists are plain imports, so a missing module fails at import time.
Route modules each have ``routes(services)`` and ``OPENAPI`` paths: ``make_app``
mounts them in this order and ``openapi.py`` documents them, so a route cannot
be served without being documented (tests/api/test_openapi.py).

Service modules each have ``async def setup(services)`` (called once at
start-up, after the core services exist) and may have ``async def
shutdown(services)``.
"""

from __future__ import annotations

from types import ModuleType

from whatsease.analytics import service as analytics_service
from whatsease.api import (
    activity,
    analytics,
    auth,
    bot,
    channels,
    chatbots,
    cluster,
    messages,
    openapi,
    ops,
    sessions,
    support,
    support_ws,
    users,
    widget,
)
from whatsease.bot import service as bot_service
from whatsease.channels import service as channels_service
from whatsease.chatbots import service as chatbots_service
from whatsease.cluster import service as cluster_service
from whatsease.realtime import handler
from whatsease.realtime import service as realtime_service
from whatsease.support import service as support_service

# In mounting order.
ROUTE_MODULES: tuple[ModuleType, ...] = (
    ops, sessions, auth, users, messages, activity, handler, bot, support, widget, support_ws,
    analytics, channels, chatbots, cluster, openapi,
)

# In set-up order (shut down in reverse).
SERVICE_MODULES: tuple[ModuleType, ...] = (
    cluster_service, bot_service, realtime_service, support_service, analytics_service,
    channels_service, chatbots_service)


def route_modules() -> list[ModuleType]:
    return list(ROUTE_MODULES)


def service_modules() -> list[ModuleType]:
    return list(SERVICE_MODULES)
