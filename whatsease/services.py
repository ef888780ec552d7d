"""The services one process shares, built once in ``make_app`` and handed to every handler."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from whatsease.activity import ActivityLog
from whatsease.auth.accounts import Accounts
from whatsease.auth.service import AuthService
from whatsease.config import Config
from whatsease.delivery.hub import Hub
from whatsease.messaging.service import Messaging
from whatsease.storage.store import Store
from whatsease.writelane import WriteLane

if TYPE_CHECKING:
    from whatsease.analytics.service import Analytics

    # Built by their service modules' setup() once these core services exist.
    from whatsease.bot.service import Assistant
    from whatsease.channels.service import ChannelService
    from whatsease.chatbots.service import ChatbotService
    from whatsease.cluster.service import Cluster
    from whatsease.realtime.service import Realtime
    from whatsease.support.service import SupportService


class RequestTracker:
    """Counts requests under way so that shutdown can wait until none is left."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._idle.set()

    async def wait_idle(self, grace: float) -> bool:
        """True once no request is under way; False if ``grace`` seconds pass first."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True


@dataclass
class Services:
    """Every service of the process, each built once (``app.build_services``)."""

    config: Config
    store: Store
    hub: Hub
    activity: ActivityLog
    auth: AuthService
    accounts: Accounts
    messaging: Messaging
    # The write lane the activity log, messaging and support share (urgent first).
    lane: WriteLane = field(default_factory=WriteLane)
    # Set by the service modules' setup() (api/registry.py), in that order.
    assistant: Assistant | None = None
    realtime: Realtime | None = None
    support: SupportService | None = None
    analytics: Analytics | None = None
    channels: ChannelService | None = None
    chatbots: ChatbotService | None = None
    # Set when WHATSEASE_CLUSTER is not off (cluster/service.py).
    cluster: Cluster | None = None
    # True while start-up work (the demo accounts) is under way: /readyz answers 503.
    starting: bool = False
    # Says why the process is beyond repair (its embedded database could not be
    # restarted), or None: /healthz answers 503 then, so the platform restarts it.
    health_check: Callable[[], str | None] | None = None
    draining: bool = False
    # REST requests being handled now; a graceful shutdown waits for them.
    requests: RequestTracker = field(default_factory=lambda: RequestTracker())
